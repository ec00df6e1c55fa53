package pubsub

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// TypedMessage is a Message whose Data has the registered type T.
type TypedMessage[T proto.Message] struct {
	Ctx    context.Context
	Peer   key.ID
	Data   T
	Topic  string
	Origin key.ID
	Direct bool
}

// Subscribe subscribes ch to the Feed of T's messages (T a generated message pointer type, such
// as *mypb.Block): s.Feed(T).Subscribe, with each Message converted. The rules of Feed hold: a
// message that finds ch full is dropped for this subscription and counted. A message whose Data
// is not a T (one injected with Feed.Send) is skipped, not counted. It may be called before T is
// registered.
func Subscribe[T proto.Message](s *Server, ch chan TypedMessage[T]) Subscription {
	var zero T
	f := s.reg.typeFeed(zero.ProtoReflect().Descriptor().FullName(), s.met)
	return f.subscribe(func(m Message) trySend {
		d, ok := m.Data.(T)
		if !ok || ch == nil {
			return trySkip // not a T (a message injected with Feed.Send): not for ch
		}
		select {
		case ch <- TypedMessage[T]{Ctx: m.Ctx, Peer: m.Peer, Data: d, Topic: m.Topic, Origin: m.Origin, Direct: m.Direct}:
			return trySent
		default:
			return tryFull
		}
	})
}

// Handle returns a Handler that passes messages of type T to fn and ignores others; use it to
// end an adapter chain in code of your own, or to test adapters.
func Handle[T proto.Message](fn func(TypedMessage[T])) Handler {
	return func(m Message) {
		if d, ok := m.Data.(T); ok {
			fn(TypedMessage[T]{Ctx: m.Ctx, Peer: m.Peer, Data: d, Topic: m.Topic, Origin: m.Origin, Direct: m.Direct})
		}
	}
}
