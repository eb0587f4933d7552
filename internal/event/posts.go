// Decoding of the fields that list posts: renders (in the order of their keys),
// removals and postRevisions.

package event

import "strconv"

func (f *fields) renders(s *scanner) error {
	f.ev.Renders, f.rendersErr = nil, nil
	if null(s) {
		return nil
	}
	if s.peek() != '{' {
		return wrongType(s, &f.rendersErr, func(string) *Error {
			return invalid(ReasonRenders, `"renders" must be an object of post id to {"show", "content"}`)
		})
	}
	s.i++
	var index map[string]int
	if s.eat('}') {
		return nil
	}
	for {
		id, err := s.str()
		if err != nil || !s.eat(':') {
			return errSyntax
		}
		r, ferr, err := render(s, id)
		if err != nil {
			return err
		}
		switch {
		case f.rendersErr != nil:
		case ferr != nil:
			f.rendersErr, f.ev.Renders = ferr, nil
		default:
			// A repeated key behaves as in the browser's JSON.parse: the last value
			// wins, in the position of the first.
			if index == nil && len(f.ev.Renders) >= 8 {
				index = make(map[string]int, 16)
				for i, r := range f.ev.Renders {
					if _, dup := index[r.ID]; !dup {
						index[r.ID] = i
					}
				}
			}
			if i, dup := position(f.ev.Renders, index, id); dup {
				f.ev.Renders[i] = r
			} else {
				if index != nil {
					index[id] = len(f.ev.Renders)
				}
				f.ev.Renders = append(f.ev.Renders, r)
			}
		}
		if closed, err := s.after('}'); closed || err != nil {
			return err
		}
	}
}

// position finds post id among the renders so far: a scan while they are few, the
// index once they are many.
func position(rs []Render, index map[string]int, id string) (int, bool) {
	if index != nil {
		i, ok := index[id]
		return i, ok
	}
	for i := range rs {
		if rs[i].ID == id {
			return i, true
		}
	}
	return 0, false
}

// render reads one {"show": bool, "content": string}.
func render(s *scanner, id string) (Render, *Error, error) {
	shape := func() *Error {
		return invalid(ReasonRenders, `render of post %q must be {"show": bool, "content": string}`, truncate(id))
	}
	if id == "" || len(id) > MaxPostIDLen {
		if err := s.skip(1); err != nil {
			return Render{}, nil, err
		}
		return Render{}, invalid(ReasonRenders, `"renders" has a post id of %d bytes; 1 to %d are allowed`, len(id), MaxPostIDLen), nil
	}
	if null(s) {
		return Render{}, invalid(ReasonRenders, `render of post %q needs both "show" (bool) and "content" (string)`, truncate(id)), nil
	}
	if s.peek() != '{' {
		if err := s.skip(1); err != nil {
			return Render{}, nil, err
		}
		return Render{}, shape(), nil
	}
	s.i++
	r := Render{ID: id}
	var hasShow, hasContent bool
	var showErr, contentErr *Error // per key, so that a repeated key's last value counts
	if !s.eat('}') {
		for {
			key, err := s.key()
			if err != nil || !s.eat(':') {
				return Render{}, nil, errSyntax
			}
			switch string(key) {
			case "show":
				showErr = nil
				switch {
				case null(s):
					hasShow = false
				case s.peek() == 't' && s.literal("true"):
					r.Show, hasShow = true, true
				case s.peek() == 'f' && s.literal("false"):
					r.Show, hasShow = false, true
				default:
					if err := s.skip(1); err != nil {
						return Render{}, nil, err
					}
					showErr, hasShow = shape(), false
				}
			case "content":
				contentErr = nil
				switch {
				case null(s):
					hasContent = false
				case s.peek() == '"':
					if r.Content, err = s.str(); err != nil {
						return Render{}, nil, err
					}
					hasContent = true
				default:
					if err := s.skip(1); err != nil {
						return Render{}, nil, err
					}
					contentErr, hasContent = shape(), false
				}
			default:
				if err := s.skip(1); err != nil {
					return Render{}, nil, err
				}
			}
			if s.eat('}') {
				break
			}
			if !s.eat(',') {
				return Render{}, nil, errSyntax
			}
		}
	}
	if showErr != nil {
		return Render{}, showErr, nil
	}
	if contentErr != nil {
		return Render{}, contentErr, nil
	}
	if !hasShow || !hasContent {
		return Render{}, invalid(ReasonRenders, `render of post %q needs both "show" (bool) and "content" (string)`, truncate(id)), nil
	}
	return r, nil, nil
}

func (f *fields) removals(s *scanner) error {
	f.ev.Removals, f.removalsErr = nil, nil
	if null(s) {
		return nil
	}
	begin := s.i
	// notArray re-reads the whole value from its start, to validate it and quote it.
	notArray := func() error {
		s.i = begin
		text, err := mismatch(s)
		if err != nil {
			return err
		}
		f.removalsErr, f.ev.Removals = invalid(ReasonRemovals, `"removals" must be an array of post ids, got %s`, text), nil
		return nil
	}
	if s.peek() != '[' {
		return notArray()
	}
	s.i++
	ids := []string{}
	if !s.eat(']') {
		for {
			if s.peek() != '"' {
				return notArray()
			}
			id, err := s.str()
			if err != nil {
				return err
			}
			if (id == "" || len(id) > MaxPostIDLen) && f.removalsErr == nil {
				f.removalsErr = invalid(ReasonRemovals, `"removals" has a post id of %d bytes; 1 to %d are allowed`, len(id), MaxPostIDLen)
			}
			ids = append(ids, id)
			if s.eat(']') {
				break
			}
			if !s.eat(',') {
				return errSyntax
			}
		}
	}
	if f.removalsErr == nil {
		f.ev.Removals = ids
	}
	return nil
}

func (f *fields) postRevisions(s *scanner) error {
	f.ev.PostRevisions, f.postRevErr = nil, nil
	if null(s) {
		return nil
	}
	if s.peek() != '{' {
		return wrongType(s, &f.postRevErr, func(string) *Error {
			return invalid(ReasonRevision, `"post_revisions" must be an object of post id to revision`)
		})
	}
	s.i++
	revs := map[string]int64{}
	var bad map[string]bool // per id, so that a repeated id's last value counts
	if !s.eat('}') {
		for {
			id, err := s.str()
			if err != nil || !s.eat(':') {
				return errSyntax
			}
			ok := false
			if c := s.peek(); c == '-' || '0' <= c && c <= '9' {
				num, err := s.number()
				if err != nil {
					return err
				}
				if rev, perr := strconv.ParseInt(string(num), 10, 64); perr == nil && rev >= 0 {
					revs[id], ok = rev, true
				}
			} else if _, err := mismatch(s); err != nil {
				return err
			}
			if ok {
				delete(bad, id)
			} else {
				if bad == nil {
					bad = map[string]bool{}
				}
				bad[id] = true
			}
			if s.eat('}') {
				break
			}
			if !s.eat(',') {
				return errSyntax
			}
		}
	}
	if len(bad) > 0 {
		f.postRevErr = invalid(ReasonRevision, `"post_revisions" must map post ids to whole numbers ≥ 0 that fit 64 bits`)
		return nil
	}
	f.ev.PostRevisions = revs
	return nil
}
