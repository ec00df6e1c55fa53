package key

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/switchyard-p2p/switchyard/internal/atomicfile"
)

// PrivKeyName is the amino-JSON type name of an Ed25519 private key in
// node_key.json (CometBFT crypto/ed25519.PrivKeyName).
const PrivKeyName = "tendermint/PrivKeyEd25519"

// PubKeyName is the amino-JSON type name of an Ed25519 public key
// (CometBFT crypto/ed25519.PubKeyName).
const PubKeyName = "tendermint/PubKeyEd25519"

// KeyFileMode is the permission a node key file is written with.
const KeyFileMode fs.FileMode = 0o600

// maxKeyFileBytes bounds what LoadNodeKey reads: a node key file is about 150 bytes, so anything
// larger is not one and is rejected without being read whole.
const maxKeyFileBytes = 1 << 20

// ErrInvalidKeyFile is wrapped (inside a *FileError) by LoadNodeKey and
// LoadOrGenNodeKey when a node key file exists but its content is not a valid
// CometBFT node key: empty, larger than 1 MiB, not JSON, no "priv_key" member (the name is
// matched exactly, as in CometBFT), wrong type name, bad base64, a key that
// is not 64 bytes, or a public-key half that does not match the seed half.
// Callers should test for it with errors.Is.
var ErrInvalidKeyFile = errors.New("key: invalid node key file")

// ErrInvalidKey is wrapped by NodeKey.Validate for a key that cannot sign as its ID: not 64
// bytes, or a public half that does not match the seed half.
var ErrInvalidKey = errors.New("key: invalid node key")

// ErrDanglingLink is wrapped (inside a *FileError) by LoadNodeKey and LoadOrGenNodeKey when the
// node key path is a symbolic link whose target does not exist, such as a link into a secrets
// volume that is not mounted. It does not wrap fs.ErrNotExist: a new key written there would
// replace the link and give the node a new identity, so no key is generated.
var ErrDanglingLink = errors.New("key: node key file is a symbolic link to a missing file; not generating a new key over it")

// FileError reports a problem reading or writing a node key file. Path is the
// file involved; Err is the cause, which may wrap fs.ErrNotExist,
// fs.ErrPermission, ErrInvalidKeyFile, ErrDanglingLink or an I/O error.
type FileError struct {
	Path string
	Err  error
}

// Error names the file and the cause.
func (e *FileError) Error() string {
	return fmt.Sprintf("key: node key file %q: %v", e.Path, e.Err)
}

// Unwrap returns the cause, so errors.Is(err, fs.ErrNotExist) and
// errors.Is(err, ErrInvalidKeyFile) work.
func (e *FileError) Unwrap() error { return e.Err }

// NodeKey is a node's long-term Ed25519 identity key. PrivKey uses Go's
// 64-byte layout, seed(32) ‖ pubkey(32), which is also CometBFT's. The zero
// value holds no key; its methods do not panic but return an empty public key
// and the ID of no bytes. NodeKey is a value and safe for concurrent reads;
// callers must not modify PrivKey's bytes.
type NodeKey struct {
	PrivKey ed25519.PrivateKey
}

// GenNodeKey generates a fresh key from 32 bytes read from rand. A nil rand
// means crypto/rand. A deterministic reader gives a deterministic key (the 32
// bytes are the Ed25519 seed). The error, if any, comes from reading rand.
func GenNodeKey(rand io.Reader) (NodeKey, error) {
	if rand == nil {
		rand = cryptoRand
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return NodeKey{}, fmt.Errorf("key: generate node key: %w", err)
	}
	return NodeKey{PrivKey: ed25519.NewKeyFromSeed(seed)}, nil
}

var cryptoRand io.Reader = rand.Reader

// PubKey returns the public half of the key (32 bytes, aliasing PrivKey). It
// returns nil if k does not hold a 64-byte key.
func (k NodeKey) PubKey() ed25519.PublicKey {
	if len(k.PrivKey) != ed25519.PrivateKeySize {
		return nil
	}
	return ed25519.PublicKey(k.PrivKey[ed25519.SeedSize:])
}

// ID returns the node ID derived from the public key (docs/WIRE.md §1).
func (k NodeKey) ID() ID { return PubKeyToID(k.PubKey()) }

// nodeKeyJSON is CometBFT's amino-JSON layout of p2p.NodeKey.
type nodeKeyJSON struct {
	PrivKey typedValue `json:"priv_key"`
}

type typedValue struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// marshal returns the exact bytes CometBFT writes: compact JSON, no trailing
// newline.
func (k NodeKey) marshal() ([]byte, error) {
	if err := checkPrivKey(k.PrivKey, ErrInvalidKeyFile); err != nil {
		return nil, err
	}
	return json.Marshal(nodeKeyJSON{PrivKey: typedValue{
		Type:  PrivKeyName,
		Value: base64.StdEncoding.EncodeToString(k.PrivKey),
	}})
}

// Validate reports whether k is usable: PrivKey is 64 bytes and its public half is the one
// derived from its seed half, so that k signs as k.ID(). It returns nil or an error wrapping
// ErrInvalidKey. The zero NodeKey is invalid. It is pure and safe for concurrent use.
func (k NodeKey) Validate() error {
	return checkPrivKey(k.PrivKey, ErrInvalidKey)
}

// checkPrivKey verifies that priv is 64 bytes and that its public half is the
// one derived from its seed half (which also rejects a zeroed public half). Its
// errors wrap sentinel.
func checkPrivKey(priv []byte, sentinel error) error {
	if len(priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: private key is %d bytes, expected %d", sentinel, len(priv), ed25519.PrivateKeySize)
	}
	want := ed25519.NewKeyFromSeed(priv[:ed25519.SeedSize])
	if !bytes.Equal(want[ed25519.SeedSize:], priv[ed25519.SeedSize:]) {
		return fmt.Errorf("%w: public key half does not match the seed", sentinel)
	}
	return nil
}

func unmarshalNodeKey(data []byte) (NodeKey, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return NodeKey{}, fmt.Errorf("%w: file is empty", ErrInvalidKeyFile)
	}
	// CometBFT's libs/json looks the member up by its exact name, where encoding/json would also
	// take "Priv_Key" or "PRIV_KEY" (the last one in the file), so the same file could give
	// another identity here than in CometBFT.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return NodeKey{}, fmt.Errorf("%w: %w", ErrInvalidKeyFile, err)
	}
	raw, ok := members["priv_key"]
	if !ok {
		return NodeKey{}, fmt.Errorf("%w: no priv_key", ErrInvalidKeyFile)
	}
	var v nodeKeyJSON
	if err := json.Unmarshal(raw, &v.PrivKey); err != nil {
		return NodeKey{}, fmt.Errorf("%w: priv_key: %w", ErrInvalidKeyFile, err)
	}
	if v.PrivKey.Type != PrivKeyName {
		return NodeKey{}, fmt.Errorf("%w: priv_key.type is %q, expected %q", ErrInvalidKeyFile, v.PrivKey.Type, PrivKeyName)
	}
	priv, err := base64.StdEncoding.DecodeString(v.PrivKey.Value)
	if err != nil {
		return NodeKey{}, fmt.Errorf("%w: priv_key.value: %w", ErrInvalidKeyFile, err)
	}
	if err := checkPrivKey(priv, ErrInvalidKeyFile); err != nil {
		return NodeKey{}, err
	}
	return NodeKey{PrivKey: ed25519.PrivateKey(priv)}, nil
}

// SaveAs writes k to path in CometBFT's node_key.json format with mode 0600.
// The write is atomic: the bytes go to a temporary file in the same directory,
// which is fsynced, closed and renamed over path; then the directory is
// fsynced. After a crash path holds either its old content or the new key,
// never a partial file (a stray "."+base name+"-*.tmp" file, such as
// ".node_key.json-123.tmp", may be left behind; it is never read). The directory must exist. SaveAs blocks on disk I/O.
// Errors are *FileError; an invalid k wraps ErrInvalidKeyFile.
func (k NodeKey) SaveAs(path string) error {
	data, err := k.marshal()
	if err != nil {
		return &FileError{Path: path, Err: err}
	}
	if err := writeFileAtomic(path, data); err != nil {
		return &FileError{Path: path, Err: err}
	}
	return nil
}

// beforeRename, when non-nil, is called by writeFileAtomic after the temporary
// file is written and synced and before it is renamed. Tests use it to
// simulate a crash at that point by returning an error.
var beforeRename func(tmpPath string) error

func writeFileAtomic(path string, data []byte) error {
	return atomicfile.WriteFileWith(path, data, KeyFileMode, atomicfile.Options{BeforeRename: beforeRename})
}

// LoadNodeKey reads a node key from path (CometBFT's node_key.json format).
// Any problem is a *FileError naming path: a missing file wraps
// fs.ErrNotExist; a symbolic link to a missing file wraps ErrDanglingLink (and not
// fs.ErrNotExist); an empty, truncated, corrupt or inconsistent file, or one larger than
// 1 MiB (which is not read whole), wraps ErrInvalidKeyFile. LoadNodeKey never modifies the file.
func LoadNodeKey(path string) (NodeKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(path)
				return NodeKey{}, &FileError{Path: path, Err: fmt.Errorf("%w (target %q)", ErrDanglingLink, target)}
			}
		}
		return NodeKey{}, &FileError{Path: path, Err: err}
	}
	k, err := unmarshalNodeKey(data)
	if err != nil {
		return NodeKey{}, &FileError{Path: path, Err: err}
	}
	return k, nil
}

// readKeyFile reads path, at most maxKeyFileBytes of it: a larger file (or an endless one, such
// as a link to a device) is an error wrapping ErrInvalidKeyFile.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() // read-only: nothing to flush
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("%w: file is larger than %d bytes", ErrInvalidKeyFile, maxKeyFileBytes)
	}
	return data, nil
}

// LoadOrGenNodeKey loads the node key at path, or, only if the file does not
// exist (errors.Is(err, fs.ErrNotExist); a dangling symbolic link does not count, see
// ErrDanglingLink), generates a key with crypto/rand and
// saves it there atomically with SaveAs. A file that exists but cannot be read
// or parsed is reported as a *FileError and is left untouched: the node's
// identity is never replaced silently. Not safe to call concurrently with
// another writer of the same path.
func LoadOrGenNodeKey(path string) (NodeKey, error) {
	k, err := LoadNodeKey(path)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return NodeKey{}, err
	}
	k, err = GenNodeKey(nil)
	if err != nil {
		return NodeKey{}, &FileError{Path: path, Err: err}
	}
	if err := k.SaveAs(path); err != nil {
		return NodeKey{}, err
	}
	return k, nil
}
