package key_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

func ExampleLoadOrGenNodeKey() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "node_key.json")

	nk, err := key.LoadOrGenNodeKey(path) // generated: the file did not exist
	if err != nil {
		panic(err)
	}
	again, err := key.LoadOrGenNodeKey(path) // loaded: same identity
	if err != nil {
		panic(err)
	}
	fmt.Println(nk.ID() == again.ID(), len(nk.ID()))
	// Output: true 40
}

func ExampleParseID() {
	id, err := key.ParseID("A50BF51D1E331C65E9F9F895CFE1825A290EDF48")
	fmt.Println(id, err)
	// Output: a50bf51d1e331c65e9f9f895cfe1825a290edf48 <nil>
}
