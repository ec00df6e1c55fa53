package pubsub

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// topicReg is one registered (typed) or joined (raw) topic. Fields other than validators are
// read-only after registration.
type topicReg struct {
	name    string
	mt      protoreflect.MessageType // nil: raw
	cfg     TopicConfig
	handler Handler // adapters → feeds
	queue   *topicQueue
	met     *topicMetrics

	validators atomic.Pointer[[]Validator]
	vmu        sync.Mutex // serialises addValidator
}

func (t *topicReg) addValidator(v Validator) {
	t.vmu.Lock()
	defer t.vmu.Unlock()
	old := t.validatorList()
	list := append(slices.Clip(old), v)
	t.validators.Store(&list)
}

func (t *topicReg) validatorList() []Validator {
	if p := t.validators.Load(); p != nil {
		return *p
	}
	return nil
}

// registry holds the topics and the Feeds. A leaf structure.
type registry struct {
	mu         sync.Mutex
	topics     map[string]*topicReg
	types      map[protoreflect.FullName]*topicReg
	typeFeeds  map[protoreflect.FullName]*feed
	topicFeeds map[string]*feed
	closed     bool
}

func (r *registry) init() {
	r.topics = make(map[string]*topicReg)
	r.types = make(map[protoreflect.FullName]*topicReg)
	r.typeFeeds = make(map[protoreflect.FullName]*feed)
	r.topicFeeds = make(map[string]*feed)
}

// add registers topic with message type mt (nil: raw).
func (r *registry) add(topic string, mt protoreflect.MessageType, adapters []Adapter, tc TopicConfig, met *Metrics, deliverQueue int) (*topicReg, error) {
	r.mu.Lock()
	err := r.conflictLocked(topic, mt)
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// The adapters' constructors are the application's code: they run without the lock (they
	// may call the Server, which takes it). The chain ends in the topic's Feeds, set below; it
	// runs only once the topic is in the map, after they are.
	var feeds []*feed
	var handler Handler = func(m Message) {
		for _, f := range feeds {
			f.Send(m)
		}
	}
	for i := len(adapters) - 1; i >= 0; i-- { // as Chain, checking each result
		if adapters[i] == nil {
			continue
		}
		if handler = adapters[i](handler); handler == nil {
			// Called on the first message delivered, a nil would panic on a worker.
			return nil, fmt.Errorf("pubsub: register %q: adapter %d returned a nil Handler", topic, i)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.conflictLocked(topic, mt); err != nil { // registered meanwhile
		return nil, err
	}
	if mt != nil {
		f := r.typeFeedLocked(mt.Descriptor().FullName(), met)
		f.setDrops(met.FeedDrops.With(topic))
		feeds = append(feeds, f)
	}
	tf := r.topicFeedLocked(topic, met)
	tf.setDrops(met.FeedDrops.With(topic))
	feeds = append(feeds, tf)
	t := &topicReg{
		name:  topic,
		mt:    mt,
		cfg:   tc,
		queue: newTopicQueue(tc.ValidateQueue, deliverQueue, tc.ValidateConcurrency),
		met:   newTopicMetrics(met, topic),
	}
	t.handler = handler
	r.topics[topic] = t
	if mt != nil {
		r.types[mt.Descriptor().FullName()] = t
	}
	return t, nil
}

// conflictLocked returns errStopped once closed, or ErrAlreadyRegistered if topic or mt is bound.
// The caller holds mu.
func (r *registry) conflictLocked(topic string, mt protoreflect.MessageType) error {
	if r.closed {
		return errStopped
	}
	if _, dup := r.topics[topic]; dup {
		return fmt.Errorf("pubsub: register %q: topic %w", topic, ErrAlreadyRegistered)
	}
	if mt != nil {
		name := mt.Descriptor().FullName()
		if prev := r.types[name]; prev != nil {
			return fmt.Errorf("pubsub: register %q: message type %s %w on %q", topic, name, ErrAlreadyRegistered, prev.name)
		}
	}
	return nil
}

func (r *registry) topic(name string) *topicReg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.topics[name]
}

func (r *registry) byType(name protoreflect.FullName) *topicReg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.types[name]
}

func (r *registry) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.topics))
	for n := range r.topics {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (r *registry) typeFeed(name protoreflect.FullName, met *Metrics) *feed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.typeFeedLocked(name, met)
}

func (r *registry) typeFeedLocked(name protoreflect.FullName, met *Metrics) *feed {
	f := r.typeFeeds[name]
	if f == nil {
		label := "other" // until RegisterTopic binds the type
		if t := r.types[name]; t != nil {
			label = t.name
		}
		f = newFeed(met.FeedDrops.With(label))
		if r.closed {
			f.close()
		}
		r.typeFeeds[name] = f
	}
	return f
}

func (r *registry) topicFeed(topic string, met *Metrics) *feed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.topicFeedLocked(topic, met)
}

func (r *registry) topicFeedLocked(topic string, met *Metrics) *feed {
	f := r.topicFeeds[topic]
	if f == nil {
		label := "other" // until the topic is registered: labels stay bounded
		if r.topics[topic] != nil {
			label = topic
		}
		f = newFeed(met.FeedDrops.With(label))
		if r.closed {
			f.close()
		}
		r.topicFeeds[topic] = f
	}
	return f
}

// subscribers counts the subscriptions of topic's Feeds.
func (r *registry) subscribers(t *topicReg) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(*r.topicFeeds[t.name].subs.Load())
	if t.mt != nil {
		if f := r.typeFeeds[t.mt.Descriptor().FullName()]; f != nil {
			n += len(*f.subs.Load())
		}
	}
	return n
}

func (r *registry) feedDrops() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	for _, f := range r.typeFeeds {
		n += f.dropsTotal()
	}
	for _, f := range r.topicFeeds {
		n += f.dropsTotal()
	}
	return n
}

// close ends every Feed subscription (Run returned); later Feeds are born closed.
func (r *registry) close() {
	r.mu.Lock()
	r.closed = true
	var fs []*feed
	for _, f := range r.typeFeeds {
		fs = append(fs, f)
	}
	for _, f := range r.topicFeeds {
		fs = append(fs, f)
	}
	r.mu.Unlock()
	for _, f := range fs {
		f.close()
	}
}
