// Package browsertest is a model for tests, not production code: it does what
// Wagtail Live's browser code (process_updates in its utils.js) does with each
// live-page-update message, so tests can check that the updates liverelay publishes
// leave a reader's page exactly as the CMS has it.
package browsertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// Post is one live post as the page shows it.
type Post struct {
	ID      string
	Show    bool
	Content string
}

// Page is the list of live posts of one channel, top first.
type Page struct {
	Posts []Post
}

// Apply applies one message's data as process_updates does: each render in the order
// of the object's keys (replace in place, or insert at the top when new), then each
// removal (a no-op when the post is gone). It fails when removals is missing, as the
// browser's forEach would throw.
func (p *Page) Apply(data []byte) error {
	var msg struct {
		Renders  json.RawMessage `json:"renders"`
		Removals *[]string       `json:"removals"`
	}
	if err := json.Unmarshal(data, &msg); err != nil {
		return fmt.Errorf("data is not an update: %w", err)
	}
	if msg.Removals == nil {
		return fmt.Errorf("data has no removals array: the browser would throw")
	}
	dec := json.NewDecoder(bytes.NewReader(msg.Renders))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("renders is not an object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		var r struct {
			Show    bool   `json:"show"`
			Content string `json:"content"`
		}
		if err := dec.Decode(&r); err != nil {
			return err
		}
		p.render(Post{ID: tok.(string), Show: r.Show, Content: r.Content})
	}
	for _, id := range *msg.Removals {
		p.Posts = slices.DeleteFunc(p.Posts, func(q Post) bool { return q.ID == id })
	}
	return nil
}

func (p *Page) render(post Post) {
	for i := range p.Posts {
		if p.Posts[i].ID == post.ID {
			p.Posts[i] = post
			return
		}
	}
	p.Posts = append([]Post{post}, p.Posts...)
}

// Equal reports whether both pages show the same posts in the same order.
func (p *Page) Equal(q *Page) bool {
	return slices.Equal(p.Posts, q.Posts)
}
