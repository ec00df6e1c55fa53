package key

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// rfc8032Key is RFC 8032 §7.1 TEST 1 in CometBFT's node_key.json format, as
// CometBFT writes it (compact amino-JSON, no trailing newline).
const (
	rfc8032File = `{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg=="}}`
	rfc8032ID   = ID("21fe31dfa154a261626bf854046fd2271b7bed4b")
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGenNodeKey(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	k1, err := GenNodeKey(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1.PrivKey, ed25519.NewKeyFromSeed(seed)) {
		t.Fatal("GenNodeKey with a fixed reader did not use its bytes as the seed")
	}
	if _, err := GenNodeKey(bytes.NewReader(seed[:31])); err == nil {
		t.Fatal("GenNodeKey with a short reader succeeded")
	}
	a, err := GenNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() == b.ID() {
		t.Fatal("two keys from crypto/rand have the same ID")
	}
	if err := a.ID().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestZeroNodeKey(t *testing.T) {
	var k NodeKey
	if k.PubKey() != nil {
		t.Fatal("zero NodeKey has a public key")
	}
	_ = k.ID() // must not panic
	if err := k.Validate(); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("zero NodeKey Validate = %v, want ErrInvalidKey", err)
	}
	good, err := GenNodeKey(nil)
	if err != nil || good.Validate() != nil {
		t.Fatalf("generated key: %v, Validate %v", err, good.Validate())
	}
	bad := NodeKey{PrivKey: append(ed25519.PrivateKey{}, good.PrivKey...)}
	bad.PrivKey[63] ^= 1
	if err := bad.Validate(); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("key with a foreign public half: Validate = %v, want ErrInvalidKey", err)
	}
	err = k.SaveAs(filepath.Join(t.TempDir(), "k.json"))
	var fe *FileError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidKeyFile) {
		t.Fatalf("SaveAs of zero key = %v, want *FileError wrapping ErrInvalidKeyFile", err)
	}
}

// TestLoadCometBFTFile loads a file in exactly the format cometbft writes.
func TestLoadCometBFTFile(t *testing.T) {
	path := writeFile(t, "node_key.json", rfc8032File)
	k, err := LoadNodeKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID() != rfc8032ID {
		t.Fatalf("ID = %s, want %s", k.ID(), rfc8032ID)
	}
	// Whitespace and unknown fields (older Tendermint wrote an "id") are fine.
	path = writeFile(t, "node_key.json", "{\n  \"id\": \"x\",\n  \"priv_key\": {\"type\": \"tendermint/PrivKeyEd25519\", \"value\": \"nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg==\"}\n}\n")
	if k, err := LoadNodeKey(path); err != nil || k.ID() != rfc8032ID {
		t.Fatalf("LoadNodeKey(indented) = %v, %v", k.ID(), err)
	}
}

// TestSaveAsFormat checks SaveAs writes CometBFT's bytes with mode 0600.
func TestSaveAsFormat(t *testing.T) {
	k, err := LoadNodeKey(writeFile(t, "in.json", rfc8032File))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "node_key.json")
	if err := k.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != rfc8032File {
		t.Fatalf("SaveAs wrote\n%s\nwant\n%s", got, rfc8032File)
	}
	assertMode(t, path)
	// Overwriting an existing file with wider permissions leaves 0600.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := k.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path)
	assertNoTemp(t, filepath.Dir(path))
}

func TestSaveAsMissingDir(t *testing.T) {
	k, _ := GenNodeKey(nil)
	path := filepath.Join(t.TempDir(), "nope", "node_key.json")
	err := k.SaveAs(path)
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != path || !strings.Contains(err.Error(), path) {
		t.Fatalf("SaveAs into a missing dir = %v, want *FileError naming %s", err, path)
	}
}

func assertMode(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != KeyFileMode {
		t.Fatalf("%s has mode %v, want %v", path, fi.Mode().Perm(), KeyFileMode)
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
}

// TestR05MissingGenerated covers RELIABILITY R-05 (first half): a missing
// node_key.json is generated with mode 0600, and loaded, not regenerated, next
// time.
func TestR05MissingGenerated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node_key.json")
	k1, err := LoadOrGenNodeKey(path)
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, path)
	k2, err := LoadOrGenNodeKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID() != k2.ID() {
		t.Fatalf("second LoadOrGenNodeKey regenerated the key: %s != %s", k1.ID(), k2.ID())
	}
	k3, err := LoadNodeKey(path)
	if err != nil || k3.ID() != k1.ID() {
		t.Fatalf("LoadNodeKey = %v, %v", k3.ID(), err)
	}
	_, err = LoadNodeKey(filepath.Join(t.TempDir(), "absent.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadNodeKey(absent) = %v, want fs.ErrNotExist", err)
	}
}

// badFiles are node key files that must be rejected (R-05 second half, R-06).
var badFiles = []struct {
	name, content string
}{
	{"empty", ""},
	{"whitespace", " \n"},
	{"truncated json", rfc8032File[:len(rfc8032File)/2]},
	{"truncated by one byte", rfc8032File[:len(rfc8032File)-1]},
	{"not json", "hello"},
	{"null", "null"},
	{"empty object", "{}"},
	{"trailing garbage", rfc8032File + "x"},
	{"wrong type", strings.Replace(rfc8032File, "PrivKeyEd25519", "PrivKeySecp256k1", 1)},
	{"bad base64", strings.Replace(rfc8032File, "nWGx", "n!Gx", 1)},
	//
	{"31-byte key", `{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyufw=="}}`},
	{"32-byte seed only", `{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="}}`},
	{"zeroed pubkey half", `{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}}`},
	{"mismatched pubkey half", strings.Replace(rfc8032File, "9wdRGg==", "9wdRGw==", 1)},
	{"65-byte key", strings.Replace(rfc8032File, "9wdRGg==", "9wdRGgAA", 1)},
}

// TestR05R06BadFileRejected covers R-05 (empty or truncated file) and R-06
// (31-byte key, zeroed or mismatched pubkey half): LoadNodeKey and
// LoadOrGenNodeKey return a *FileError naming the file, wrapping
// ErrInvalidKeyFile, never panic, and leave the file byte-for-byte untouched.
func TestR05R06BadFileRejected(t *testing.T) {
	for _, tc := range badFiles {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "node_key.json", tc.content)
			for name, load := range map[string]func(string) (NodeKey, error){
				"LoadNodeKey": LoadNodeKey, "LoadOrGenNodeKey": LoadOrGenNodeKey,
			} {
				k, err := load(path)
				var fe *FileError
				if !errors.As(err, &fe) {
					t.Fatalf("%s = %v, %v; want *FileError", name, k.ID(), err)
				}
				if fe.Path != path || !strings.Contains(err.Error(), path) {
					t.Fatalf("%s error %q does not name %s", name, err, path)
				}
				if !errors.Is(err, ErrInvalidKeyFile) || errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("%s = %v, want ErrInvalidKeyFile", name, err)
				}
				if k.PrivKey != nil {
					t.Fatalf("%s returned a key with an error", name)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.content {
				t.Fatal("the bad file was modified")
			}
		})
	}
}

// TestUnreadableFileNotRegenerated: a file that exists but cannot be read is an
// error, not "missing".
func TestUnreadableFileNotRegenerated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node_key.json")
	if err := os.Mkdir(path, 0o700); err != nil { // a directory where the file should be
		t.Fatal(err)
	}
	_, err := LoadOrGenNodeKey(path)
	var fe *FileError
	if !errors.As(err, &fe) || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadOrGenNodeKey(dir) = %v, want a *FileError that is not ErrNotExist", err)
	}
}

// TestDanglingLinkNotReplaced: a node_key.json that is a symbolic link to a missing file (a
// secrets volume that is not mounted) is an error; no new key is written over the link.
func TestDanglingLinkNotReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node_key.json")
	target := filepath.Join(dir, "secrets", "node_key.json")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrGenNodeKey(path)
	if !errors.Is(err, ErrDanglingLink) || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadOrGenNodeKey(dangling link) = %v, want ErrDanglingLink and not ErrNotExist", err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("node_key.json after LoadOrGenNodeKey: %v, mode %v; want the symbolic link left in place", err, fi.Mode())
	}
	if _, err := LoadNodeKey(path); !errors.Is(err, ErrDanglingLink) {
		t.Fatalf("LoadNodeKey(dangling link) = %v, want ErrDanglingLink", err)
	}
}

// TestR07CrashBeforeRename covers R-07 deterministically: at the last moment
// before the rename (all bytes written and synced to the temp file) the final
// path is either absent or still holds the old key, and a failure at that
// point leaves no partial file.
func TestR07CrashBeforeRename(t *testing.T) {
	t.Cleanup(func() { beforeRename = nil })
	dir := t.TempDir()
	path := filepath.Join(dir, "node_key.json")
	errCrash := errors.New("simulated crash")

	// New file: not visible under its final name until the rename.
	var sawTemp bool
	beforeRename = func(tmp string) error {
		if filepath.Dir(tmp) != dir {
			t.Errorf("temp file %s is not in %s", tmp, dir)
		}
		if _, err := LoadNodeKey(tmp); err != nil {
			t.Errorf("temp file is not complete before rename: %v", err)
		}
		if _, err := LoadNodeKey(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("final path visible before rename: %v", err)
		}
		sawTemp = true
		return errCrash
	}
	k, _ := GenNodeKey(nil)
	if err := k.SaveAs(path); !errors.Is(err, errCrash) {
		t.Fatalf("SaveAs = %v, want the simulated crash", err)
	}
	if !sawTemp {
		t.Fatal("SaveAs did not go through a temp file")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("final file exists after a failed save: %v", err)
	}
	assertNoTemp(t, dir)

	// Existing file: the old key stays intact until the rename.
	beforeRename = nil
	old, _ := GenNodeKey(nil)
	if err := old.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	beforeRename = func(string) error {
		if got, err := LoadNodeKey(path); err != nil || got.ID() != old.ID() {
			t.Errorf("old key not intact before rename: %v, %v", got.ID(), err)
		}
		return errCrash
	}
	if err := k.SaveAs(path); !errors.Is(err, errCrash) {
		t.Fatalf("SaveAs = %v", err)
	}
	beforeRename = nil
	if got, err := LoadOrGenNodeKey(path); err != nil || got.ID() != old.ID() {
		t.Fatalf("after a failed overwrite LoadOrGenNodeKey = %v, %v; want the old key", got.ID(), err)
	}
}

// TestR07LeftoverTempIgnored: what a crash between write and rename leaves
// behind (a partial temp file, no final file) is never read; LoadOrGenNodeKey
// generates a fresh valid key.
func TestR07LeftoverTempIgnored(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node_key.json")
	leftover := filepath.Join(dir, ".node_key.json-12345.tmp")
	if err := os.WriteFile(leftover, []byte(rfc8032File[:40]), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadOrGenNodeKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k2, err := LoadNodeKey(path); err != nil || k2.ID() != k.ID() {
		t.Fatalf("generated file does not load: %v", err)
	}
	assertMode(t, path)
}

const helperEnv = "SWITCHYARD_KEY_CRASH_HELPER"

// TestR07KillDuringGeneration covers R-07 with real crashes: a child process
// (this test binary) repeatedly deletes and regenerates the key file with
// LoadOrGenNodeKey and is SIGKILLed at arbitrary points, 50 times. After each
// kill the file is absent or valid, never partial, and LoadOrGenNodeKey
// succeeds.
func TestR07KillDuringGeneration(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns 50 processes")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "node_key.json")
	var absent, valid int
	for i := range 50 {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let the child complete i%5 saves, then kill it wherever it is.
		sc := bufio.NewScanner(out)
		for n := 0; n < i%5 && sc.Scan(); {
			if sc.Text() == "saved" {
				n++
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait() // "signal: killed" is expected; Wait also closes out
		switch k, err := LoadNodeKey(path); {
		case err == nil:
			if k.ID().Validate() != nil {
				t.Fatalf("iteration %d: loaded an invalid key", i)
			}
			valid++
		case errors.Is(err, fs.ErrNotExist):
			absent++
		default:
			t.Fatalf("iteration %d: key file is partial or corrupt after SIGKILL: %v", i, err)
		}
		if _, err := LoadOrGenNodeKey(path); err != nil {
			t.Fatalf("iteration %d: LoadOrGenNodeKey after crash: %v", i, err)
		}
	}
	t.Logf("after 50 SIGKILLs: %d absent, %d valid, 0 partial", absent, valid)
}

// crashHelper is the child process of TestR07KillDuringGeneration (TestMain
// runs it instead of the tests when helperEnv is set): it regenerates the key
// at path in a loop until killed.
func crashHelper(path string) {
	for {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			fmt.Println("error", err)
			os.Exit(2)
		}
		if _, err := LoadOrGenNodeKey(path); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("saved")
	}
}

// TestLoadPrivKeyNameExact: the priv_key member is found by its exact name, as CometBFT's
// libs/json finds it, so that a file gives the same identity to both: a member spelled in
// another case is not the key, also when it comes after the real one.
func TestLoadPrivKeyNameExact(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 7
	other := NodeKey{PrivKey: ed25519.NewKeyFromSeed(seed)}
	otherJSON, err := other.marshal()
	if err != nil {
		t.Fatal(err)
	}
	otherValue := strings.TrimPrefix(strings.TrimSuffix(string(otherJSON), "}"), `{"priv_key":`)
	rfcValue := strings.TrimPrefix(strings.TrimSuffix(rfc8032File, "}"), `{"priv_key":`)

	path := writeFile(t, "node_key.json", `{"priv_key":`+rfcValue+`,"Priv_Key":`+otherValue+`}`)
	if k, err := LoadNodeKey(path); err != nil || k.ID() != rfc8032ID {
		t.Fatalf("LoadNodeKey(priv_key, then Priv_Key) = %s, %v; want %s, the priv_key member (CometBFT's)",
			k.ID(), err, rfc8032ID)
	}
	path = writeFile(t, "node_key.json", `{"PRIV_KEY":`+rfcValue+`}`)
	if k, err := LoadNodeKey(path); !errors.Is(err, ErrInvalidKeyFile) {
		t.Fatalf("LoadNodeKey(PRIV_KEY only) = %s, %v; want ErrInvalidKeyFile (CometBFT reads no key)", k.ID(), err)
	}
}

// TestLoadHugeFileBounded: a node_key.json far larger than any node key (a wrong file, or a
// link to a device) is rejected as invalid without being read into memory whole.
func TestLoadHugeFileBounded(t *testing.T) {
	const size = 256 << 20
	path := filepath.Join(t.TempDir(), "node_key.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil { // sparse: no disk space used
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = LoadOrGenNodeKey(path)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrInvalidKeyFile) {
		t.Fatalf("LoadOrGenNodeKey(%d-byte file) = %v, want ErrInvalidKeyFile", size, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*maxKeyFileBytes {
		t.Fatalf("LoadOrGenNodeKey of a %d-byte file allocated %d bytes, want at most %d", size, alloc, 16*maxKeyFileBytes)
	}
}
