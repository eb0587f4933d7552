package consumer

import "github.com/nats-io/nats.go"

// acker acknowledges one stream message through its reply subject. The relay holds
// it in place of the jetstream.Msg, so that a held message does not keep its body
// alive: the decoded event has what the relay needs, and during a provider outage
// the bodies of every unacked message would otherwise stay in memory twice.
type acker struct {
	nc    *nats.Conn
	reply string
}

var (
	ackAck        = []byte("+ACK")
	ackInProgress = []byte("+WPI")
	ackNak        = []byte("-NAK")
)

// Ack tells JetStream the message is done with.
func (a acker) Ack() error { return a.nc.Publish(a.reply, ackAck) }

// InProgress resets the message's ack wait.
func (a acker) InProgress() error { return a.nc.Publish(a.reply, ackInProgress) }

// Nak asks JetStream to deliver the message again now: it goes ahead of newer ones.
func (a acker) Nak() error { return a.nc.Publish(a.reply, ackNak) }
