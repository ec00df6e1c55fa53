package pubsub

import "fmt"

// builtinRouter returns the constructor of a built-in router.
func builtinRouter(k RouterKind) (NewRouterFunc, error) {
	switch k {
	case RouterGossipsub, RouterFloodsub:
		return nil, fmt.Errorf("%w: %q is not in this build yet", ErrRouterUnavailable, k)
	}
	return nil, fmt.Errorf("%w: %q", ErrRouterUnavailable, k)
}
