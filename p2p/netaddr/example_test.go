package netaddr_test

import (
	"fmt"

	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

func ExampleParse() {
	na, err := netaddr.Parse("tcp://a50bf51d1e331c65e9f9f895cfe1825a290edf48@[::ffff:1.2.3.4]:26656")
	if err != nil {
		panic(err)
	}
	fmt.Println(na, na.Valid() == nil, na.Routable())
	// Output: a50bf51d1e331c65e9f9f895cfe1825a290edf48@1.2.3.4:26656 true true
}
