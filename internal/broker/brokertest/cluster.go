package brokertest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a JetStream cluster of in-process servers on loopback, owned by one test.
type Cluster struct {
	t       testing.TB
	servers []*Server
}

// StartCluster starts n clustered JetStream servers and waits until they have a
// meta leader; they are shut down when the test ends. Under go test -short it skips
// the test instead: a cluster takes seconds to form.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skipf("runs a %d-node cluster", n)
	}
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	c := &Cluster{t: t}
	for i := 0; i < n; i++ {
		s := &Server{t: t, opts: server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: "liverelay-test",
				Host: "127.0.0.1",
				Port: routePorts[i],
			},
			Routes: routes,
		}}
		c.servers = append(c.servers, s)
	}
	// Servers wait for their routes: start them together.
	errs := make(chan error, n)
	for _, s := range c.servers {
		go func() { errs <- s.startQuiet() }()
	}
	for _, s := range c.servers {
		t.Cleanup(s.Shutdown)
	}
	for range c.servers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !c.ready() {
		if time.Now().After(deadline) {
			t.Fatal("the JetStream cluster elected no meta leader with every node current within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// ready reports whether the cluster has a meta leader that knows every node, and
// every node is current.
func (c *Cluster) ready() bool {
	leader := false
	for _, s := range c.servers {
		if s.srv == nil || !s.srv.JetStreamIsCurrent() {
			return false
		}
		if s.srv.JetStreamIsLeader() && len(s.srv.JetStreamClusterPeers()) == len(c.servers) {
			leader = true
		}
	}
	return leader
}

// Connect returns a client connection to the whole cluster and its JetStream
// context, closed when the test ends; it reconnects to the nodes that run.
func (c *Cluster) Connect() (*nats.Conn, jetstream.JetStream) {
	c.t.Helper()
	return connect(c.t, c.URLs())
}

// ServerNamed returns the node with that server name.
func (c *Cluster) ServerNamed(name string) *Server {
	for _, s := range c.servers {
		if s.opts.ServerName == name {
			return s
		}
	}
	c.t.Fatalf("no node named %q", name)
	return nil
}

// Server returns node i (from 0).
func (c *Cluster) Server(i int) *Server { return c.servers[i] }

// URLs is every node's client URL, comma-separated, as LIVE_NATS_URL takes them.
func (c *Cluster) URLs() string {
	var out []string
	for _, s := range c.servers {
		out = append(out, fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port))
	}
	return strings.Join(out, ",")
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	var out []int
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}
