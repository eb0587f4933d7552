package browsertest

import "testing"

func TestApply(t *testing.T) {
	var p Page
	steps := []string{
		`{"renders":{"a":{"show":true,"content":"A1"},"b":{"show":true,"content":"B1"}},"removals":[]}`,
		`{"renders":{"a":{"show":false,"content":"A2"}},"removals":["b","gone"]}`,
		`{"renders":{"c":{"show":true,"content":"C1"}},"removals":[]}`,
	}
	for _, s := range steps {
		if err := p.Apply([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	want := Page{Posts: []Post{{ID: "c", Show: true, Content: "C1"}, {ID: "a", Show: false, Content: "A2"}}}
	if !p.Equal(&want) {
		t.Fatalf("page = %+v, want %+v", p.Posts, want.Posts)
	}
	if err := p.Apply([]byte(`{"renders":{}}`)); err == nil {
		t.Fatal("a message without removals must fail, as the browser throws")
	}
}
