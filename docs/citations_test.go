package docs

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// modulePath identifies the repository root (the directory whose go.mod declares it).
const modulePath = "github.com/switchyard-p2p/switchyard"

// knownDocs are the project documents that code may cite without the docs/ prefix ("WIRE.md
// §3"); such a citation is checked as docs/NAME.md. Names outside this set written without a
// prefix (CHANGELOG.md, SECURITY.md in prose about other projects) are not citations. STYLE,
// CONTRACT and GOSSIPSUB are here so that a citation of them fails: they are not in docs/.
var knownDocs = map[string]bool{
	"WIRE": true, "ARCHITECTURE": true, "RELIABILITY": true, "INTEROP": true, "PUBSUB": true,
	"STYLE": true, "CONTRACT": true, "GOSSIPSUB": true,
}

// pendingDocs are documents that code already cites and that another open issue is writing.
// While such a file is missing its citations are only logged; once it exists they are checked
// like any other. Remove an entry when its document lands.
var pendingDocs = map[string]string{}

// selfFile is this file: its examples and patterns are not citations.
const selfFile = "docs/citations_test.go"

// repoFile is one text file of the repository.
type repoFile struct {
	rel  string // slash-separated path from the repository root
	text string
}

// repoRoot returns the repository root: the parent of this package's directory, checked by its
// go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	if !bytes.HasPrefix(mod, []byte("module "+modulePath+"\n")) {
		t.Fatalf("%s/go.mod does not declare module %s", root, modulePath)
	}
	return root
}

// repoFiles returns every text file under root, skipping hidden files and directories other than
// .ci (.git, build outputs such as .bin) and files that look binary or are over 2 MiB.
func repoFiles(t *testing.T, root string) []repoFile {
	t.Helper()
	var files []repoFile
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && ((strings.HasPrefix(name, ".") && name != ".ci") || name == "node_modules" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(name, ".") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > 2<<20 {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b[:min(len(b), 8192)], 0) >= 0 {
			return nil // binary
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		files = append(files, repoFile{rel: filepath.ToSlash(rel), text: string(b)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("found only %d files under %s: wrong root?", len(files), root)
	}
	return files
}

// section is a heading of a document and the text up to the next heading of the same or a
// higher level.
type section struct {
	number string // "3.2", or "" for an unnumbered heading
	title  string // without the number, lower case
	body   string
}

// document is what citations of one docs/*.md file can name.
type document struct {
	path     string
	text     string
	sections []section
	numbered map[string]section      // section number → section
	items    map[string]map[int]bool // "rule", "convention", "pitfall" → item numbers
	rows     map[string]bool         // RELIABILITY row IDs (H-01) and anchors (TM-1)
}

var (
	headingRE     = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*$`)
	headingNumRE  = regexp.MustCompile(`^(\d+(?:\.\d+)*)\.?\s+(.*)$`)
	ruleHeadingRE = regexp.MustCompile(`(?i)^rule (\d+)\b`)
	listItemRE    = regexp.MustCompile(`(?m)^ {0,3}(\d+)\.\s`)
	boldRE        = regexp.MustCompile(`\*\*([^*]+?)\*\*`)
	rowDefRE      = regexp.MustCompile(`(?m)^\|\s*([A-Z]-\d{2})\s*\|`)
	anchorDefRE   = regexp.MustCompile(`\*\*((?:TM|LP|GE)-\d+)\.`)
)

// parseDocument indexes a Markdown document: its headings (outside fenced code blocks), numbered
// sections, rules ("### Rule N: ..."), numbered list items under headings that start with
// "Convention" or "Pitfall", and RELIABILITY rows and anchors.
func parseDocument(path, text string) *document {
	d := &document{path: path, text: text, numbered: map[string]section{}, items: map[string]map[int]bool{}, rows: map[string]bool{}}
	lines := strings.Split(text, "\n")
	type head struct {
		line, level int
		number      string
		title       string
	}
	var heads []head
	inCode := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inCode = !inCode
			continue
		}
		if inCode {
			continue
		}
		m := headingRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		h := head{line: i, level: len(m[1]), title: m[2]}
		if n := headingNumRE.FindStringSubmatch(h.title); n != nil {
			h.number, h.title = n[1], n[2]
		}
		heads = append(heads, h)
	}
	for i, h := range heads {
		end := len(lines)
		for _, g := range heads[i+1:] {
			if g.level <= h.level {
				end = g.line
				break
			}
		}
		s := section{number: h.number, title: strings.ToLower(h.title), body: strings.Join(lines[h.line:end], "\n")}
		d.sections = append(d.sections, s)
		if s.number != "" {
			d.numbered[s.number] = s
		}
		if m := ruleHeadingRE.FindStringSubmatch(h.title); m != nil {
			d.addItem("rule", m[1])
		}
		for _, kw := range []string{"convention", "pitfall"} {
			if strings.HasPrefix(s.title, kw) {
				for _, m := range listItemRE.FindAllStringSubmatch(s.body, -1) {
					d.addItem(kw, m[1])
				}
			}
		}
	}
	for _, m := range rowDefRE.FindAllStringSubmatch(text, -1) {
		d.rows[m[1]] = true
	}
	for _, m := range anchorDefRE.FindAllStringSubmatch(text, -1) {
		d.rows[m[1]] = true
	}
	return d
}

func (d *document) addItem(kw, n string) {
	i, _ := strconv.Atoi(n)
	if d.items[kw] == nil {
		d.items[kw] = map[int]bool{}
	}
	d.items[kw][i] = true
}

// hasLabel reports whether label names a heading (its title or the first words of it) or a bold
// label (**Label** or **Label.**) in the given scope: the section numbered sec, or the whole document
// when sec is "".
func (d *document) hasLabel(sec, label string) bool {
	want := strings.ToLower(strings.Join(strings.Fields(label), " "))
	scope := d.text
	if sec != "" {
		s, ok := d.numbered[sec]
		if !ok {
			return false
		}
		scope = s.body
	}
	for _, s := range d.sections {
		if strings.Contains(scope, s.body) && wordPrefix(s.title, want) {
			return true
		}
	}
	for _, m := range boldRE.FindAllStringSubmatch(scope, -1) {
		if wordPrefix(strings.TrimRight(strings.ToLower(m[1]), ".: "), want) {
			return true
		}
	}
	return false
}

// wordPrefix reports whether s is want or starts with want followed by a space or punctuation
// ("departures from cometbft" has the word prefix "departures", not "depart").
func wordPrefix(s, want string) bool {
	if !strings.HasPrefix(s, want) {
		return false
	}
	if len(s) == len(want) {
		return true
	}
	switch s[len(want)] {
	case ' ', ',', ':', '.', ';', '(':
		return true
	}
	return false
}

var (
	// commentJoinRE joins a Go comment that continues on the next line, so that a citation split
	// across lines ("docs/WIRE.md\n// §7.4") is read as one.
	commentJoinRE = regexp.MustCompile(`\n[ \t]*//[ \t]?`)
	// citeRE finds a document name: an optional path before it, then NAME.md.
	citeRE    = regexp.MustCompile(`([A-Za-z0-9_.\-/]*/)?\b([A-Z][A-Z0-9_]*)\.md\b`)
	sectionRE = regexp.MustCompile(`§\s?(\d+(?:\.\d+)*)(?:,?\s*"([^"]+)")?`)
	leadLabel = regexp.MustCompile(`^[\s,(]*"([^"]+)"`)
	itemRE    = regexp.MustCompile(`(?i)\b(rule|convention|pitfall)s?\s+(\d+(?:(?:\s*,\s*and\s+|\s*,\s*|\s+and\s+)\d+)*)`)
	numRE     = regexp.MustCompile(`\d+`)
	rowTokRE  = regexp.MustCompile(`\b(?:[HFQSCARBP]-\d{2}|(?:TM|LP|GE)-\d+)\b`)
)

// normalize prepares a file's text for citation parsing: in Go and proto files the comment
// markers of continuation lines are dropped, so that a citation split across lines
// ("docs/WIRE.md\n// §7.4") reads as one; backquotes are removed (the README writes
// `docs/WIRE.md` §7). Newlines are kept, so line numbers stay right.
func normalize(f repoFile) string {
	s := f.text
	if strings.HasSuffix(f.rel, ".go") || strings.HasSuffix(f.rel, ".proto") {
		s = commentJoinRE.ReplaceAllString(s, "\n")
	}
	return strings.ReplaceAll(s, "`", "")
}

// citationTail returns the text that belongs to a citation whose document name ends at s[0]: up
// to a semicolon, a closing parenthesis or bracket, an opening parenthesis after the first word,
// a table cell border, the end of a sentence, a blank line, or the next document name, never
// cutting inside a quoted label; at most 200 bytes.
func citationTail(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	if m := citeRE.FindStringIndex(s); m != nil {
		s = s[:m[0]]
	}
	inQuote, started := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			inQuote, started = !inQuote, true
			continue
		}
		if inQuote {
			continue
		}
		switch {
		case c == ';' || c == ')' || c == ']' || c == '|':
			return s[:i]
		case c == '(' && started:
			return s[:i]
		case c == '\n' && strings.HasPrefix(strings.TrimLeft(s[i+1:], " \t"), "\n"):
			return s[:i]
		case c == '.' && (i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\n' || s[i+1] == '\t'):
			return s[:i]
		case c != ' ' && c != ',' && c != '\n' && c != '\t' && c != '(':
			started = true
		}
	}
	return s
}

// citation is one reference to a docs file found in the repository.
type citation struct {
	at   string // file:line
	doc  string // docs/NAME.md
	tail string
}

func lineOf(text string, off int) int { return strings.Count(text[:off], "\n") + 1 }

// findCitations returns every citation of a docs/*.md file (or of a known document name without
// the prefix) in the repository's .go, .proto and .md files.
func findCitations(files []repoFile) []citation {
	var out []citation
	for _, f := range files {
		if f.rel == selfFile || !strings.HasSuffix(f.rel, ".md") && !strings.HasSuffix(f.rel, ".go") && !strings.HasSuffix(f.rel, ".proto") {
			continue
		}
		text := normalize(f)
		for _, m := range citeRE.FindAllStringSubmatchIndex(text, -1) {
			prefix, name := "", text[m[4]:m[5]]
			if m[2] >= 0 {
				prefix = text[m[2]:m[3]]
			}
			switch {
			case prefix == "docs/" || strings.HasSuffix(prefix, "/docs/"):
			case prefix == "" && knownDocs[name]:
			default:
				continue // README.md, testdata/README.md, another project's file
			}
			out = append(out, citation{
				at:   fmt.Sprintf("%s:%d", f.rel, lineOf(text, m[0])),
				doc:  "docs/" + name + ".md",
				tail: citationTail(text[m[1]:]),
			})
		}
	}
	return out
}

// loadDocs parses every docs/*.md file.
func loadDocs(files []repoFile) map[string]*document {
	docs := map[string]*document{}
	for _, f := range files {
		if strings.HasPrefix(f.rel, "docs/") && strings.Count(f.rel, "/") == 1 && strings.HasSuffix(f.rel, ".md") {
			docs[f.rel] = parseDocument(f.rel, f.text)
		}
	}
	return docs
}

// checkCitation returns the problems of one citation: a missing document, section, numbered
// item or quoted label.
func checkCitation(c citation, d *document) []string {
	var probs []string
	bad := func(format string, args ...any) {
		probs = append(probs, fmt.Sprintf("%s: %s: %s", c.at, c.doc, fmt.Sprintf(format, args...)))
	}
	if m := leadLabel.FindStringSubmatch(c.tail); m != nil && !d.hasLabel("", m[1]) {
		bad("no heading or label %q", m[1])
	}
	for _, m := range sectionRE.FindAllStringSubmatch(c.tail, -1) {
		if _, ok := d.numbered[m[1]]; !ok {
			bad("no section §%s", m[1])
			continue
		}
		if m[2] != "" && !d.hasLabel(m[1], m[2]) {
			bad("no heading or label %q in §%s", m[2], m[1])
		}
	}
	for _, m := range itemRE.FindAllStringSubmatch(c.tail, -1) {
		kw := strings.ToLower(m[1])
		for _, n := range numRE.FindAllString(m[2], -1) {
			i, _ := strconv.Atoi(n)
			if !d.items[kw][i] {
				bad("no %s %d", kw, i)
			}
		}
	}
	return probs
}

// TestCitationsResolve checks every citation of the project's documents in the repository: the
// document exists in docs/, and the sections, rules, conventions, pitfalls and quoted labels it
// names exist in it.
func TestCitationsResolve(t *testing.T) {
	files := repoFiles(t, repoRoot(t))
	docs := loadDocs(files)
	for _, want := range []string{"docs/WIRE.md", "docs/ARCHITECTURE.md", "docs/RELIABILITY.md", "docs/INTEROP.md"} {
		if docs[want] == nil {
			t.Errorf("%s is missing", want)
		}
	}
	cites := findCitations(files)
	if len(cites) < 100 {
		t.Fatalf("found only %d citations: the scanner is broken", len(cites))
	}
	var probs []string
	pending := map[string]int{}
	for _, c := range cites {
		d := docs[c.doc]
		if d == nil {
			if why, ok := pendingDocs[c.doc]; ok {
				pending[c.doc+" ("+why+")"]++
				continue
			}
			probs = append(probs, fmt.Sprintf("%s: cites %s, which does not exist", c.at, c.doc))
			continue
		}
		probs = append(probs, checkCitation(c, d)...)
	}
	for p, n := range pending {
		t.Logf("%d citations of %s not checked yet: the document is pending", n, p)
	}
	report(t, probs)
}

// TestWireSectionReferences checks that every bare "§N" inside docs/WIRE.md names one of its own
// sections (WIRE.md refers to itself that way).
func TestWireSectionReferences(t *testing.T) {
	files := repoFiles(t, repoRoot(t))
	d := loadDocs(files)["docs/WIRE.md"]
	if d == nil {
		t.Fatal("docs/WIRE.md is missing")
	}
	var probs []string
	for _, m := range regexp.MustCompile(`§\s?(\d+(?:\.\d+)*)`).FindAllStringSubmatchIndex(d.text, -1) {
		n := d.text[m[2]:m[3]]
		if _, ok := d.numbered[n]; !ok {
			probs = append(probs, fmt.Sprintf("docs/WIRE.md:%d: no section §%s", lineOf(d.text, m[0]), n))
		}
	}
	report(t, probs)
}

// TestReliabilityRowsDefined checks that every row ID (H-01 ... B-08, P-16) and anchor (TM-n,
// LP-n, GE-n) written in a .go or .md file is defined in docs/RELIABILITY.md, and that the
// catalogue has the rows the project's tests and issues refer to.
func TestReliabilityRowsDefined(t *testing.T) {
	files := repoFiles(t, repoRoot(t))
	rel := loadDocs(files)["docs/RELIABILITY.md"]
	if rel == nil {
		t.Fatal("docs/RELIABILITY.md is missing")
	}
	counts := map[byte]int{}
	for id := range rel.rows {
		if id[1] == '-' {
			counts[id[0]]++
		}
	}
	for prefix, want := range map[byte]int{'H': 16, 'F': 11, 'Q': 8, 'S': 5, 'C': 11, 'A': 13, 'P': 16, 'R': 10, 'B': 8} {
		if counts[prefix] != want {
			t.Errorf("docs/RELIABILITY.md defines %d %c- rows, want %d", counts[prefix], prefix, want)
		}
	}
	var probs []string
	for _, f := range files {
		if f.rel == selfFile || !strings.HasSuffix(f.rel, ".go") && !strings.HasSuffix(f.rel, ".md") {
			continue
		}
		for _, m := range rowTokRE.FindAllStringIndex(f.text, -1) {
			if id := f.text[m[0]:m[1]]; !rel.rows[id] {
				probs = append(probs, fmt.Sprintf("%s:%d: %s is not a row or anchor of docs/RELIABILITY.md", f.rel, lineOf(f.text, m[0]), id))
			}
		}
	}
	report(t, probs)
}

// TestDocumentedTestsExist checks that every test a document names as `package: TestName` (and
// the unqualified names listed right after it, `package: TestA`, `TestB`, or anywhere later in
// the same table row, as docs/RELIABILITY.md's status cells name them) is a function of that
// package's tests.
func TestDocumentedTestsExist(t *testing.T) {
	root := repoRoot(t)
	files := repoFiles(t, root)
	funcs := map[string]map[string]bool{} // package dir → test function names
	funcRE := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark|Example)\w*)\(`)
	for _, f := range files {
		if !strings.HasSuffix(f.rel, "_test.go") {
			continue
		}
		dir := pathDir(f.rel)
		if funcs[dir] == nil {
			funcs[dir] = map[string]bool{}
		}
		for _, m := range funcRE.FindAllStringSubmatch(f.text, -1) {
			funcs[dir][m[1]] = true
		}
	}
	spanRE := regexp.MustCompile("`([^`\n]+)`")
	qualRE := regexp.MustCompile(`^([a-z0-9_/]+): ((?:Test|Fuzz|Benchmark|Example)\w*)$`)
	nameRE := regexp.MustCompile(`^(?:Test|Fuzz|Benchmark|Example)\w*$`)
	gapRE := regexp.MustCompile(`^[,\s]*(?:and\s+)?$`)
	var probs []string
	checked := 0
	for _, f := range files {
		if !strings.HasPrefix(f.rel, "docs/") || !strings.HasSuffix(f.rel, ".md") {
			continue
		}
		pkg, prevEnd := "", -1
		for _, m := range spanRE.FindAllStringSubmatchIndex(f.text, -1) {
			span := f.text[m[2]:m[3]]
			var name string
			switch q := qualRE.FindStringSubmatch(span); {
			case q != nil:
				pkg, name = q[1], q[2]
			case pkg != "" && nameRE.MatchString(span) && prevEnd >= 0 &&
				(gapRE.MatchString(f.text[prevEnd:m[0]]) || sameTableRow(f.text, prevEnd, m[0])):
				name = span
			default:
				pkg, prevEnd = "", -1
				continue
			}
			prevEnd = m[1]
			checked++
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(pkg))); err != nil {
				probs = append(probs, fmt.Sprintf("%s:%d: package %s does not exist", f.rel, lineOf(f.text, m[0]), pkg))
				continue
			}
			if !funcs[pkg][name] {
				probs = append(probs, fmt.Sprintf("%s:%d: %s has no %s", f.rel, lineOf(f.text, m[0]), pkg, name))
			}
		}
	}
	if checked < 100 {
		t.Errorf("checked only %d test names: the scanner is broken", checked)
	}
	report(t, probs)
}

// TestNoReferenceOutsideRepository checks that no file refers to the specification directory the
// project was started from, which a clone does not have.
func TestNoReferenceOutsideRepository(t *testing.T) {
	files := repoFiles(t, repoRoot(t))
	shared := "sha" + "red" // spelled in two parts so that this file does not match itself
	re := regexp.MustCompile(`(?:\.\./)+` + shared + `\b|/work/(?:` + shared + `|main|wt)\b|\b` + shared + `/spec\b`)
	var probs []string
	for _, f := range files {
		for _, m := range re.FindAllStringIndex(f.text, -1) {
			probs = append(probs, fmt.Sprintf("%s:%d: %q refers outside the repository", f.rel, lineOf(f.text, m[0]), f.text[m[0]:m[1]]))
		}
	}
	report(t, probs)
}

// sameTableRow reports whether text[from:to] lies within one line that is a Markdown table row.
func sameTableRow(text string, from, to int) bool {
	if strings.Contains(text[from:to], "\n") {
		return false
	}
	start := strings.LastIndexByte(text[:from], '\n') + 1
	return strings.HasPrefix(text[start:], "|")
}

func pathDir(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return "."
}

// report fails the test with every problem, sorted, one per line.
func report(t *testing.T, probs []string) {
	t.Helper()
	sort.Strings(probs)
	for _, p := range probs {
		t.Error(p)
	}
}

// TestParsers pins the parsing rules on small inputs, so that the checks above cannot pass by
// finding nothing.
func TestParsers(t *testing.T) {
	d := parseDocument("docs/X.md", strings.Join([]string{
		"# X", "## 1. One", "**Pitfall.** text", "### 1.2 Sub", "**Dial backoff** more",
		"```", "## 9. In code", "```", "## Rules", "### Rule 3: lifecycle", "## Conventions",
		"1. **Names.**", "2. **Errors.**", "## Pitfalls seen", "10. **Ten.**",
		"| H-01 | row | TM-1 | covered |", "* **TM-1. Title.** text",
	}, "\n"))
	for _, n := range []string{"1", "1.2"} {
		if _, ok := d.numbered[n]; !ok {
			t.Errorf("section %s not found", n)
		}
	}
	if _, ok := d.numbered["9"]; ok {
		t.Error("a heading inside a code block was taken")
	}
	if !d.items["rule"][3] || !d.items["convention"][1] || !d.items["convention"][2] || d.items["convention"][3] || !d.items["pitfall"][10] {
		t.Errorf("items %v", d.items)
	}
	if !d.rows["H-01"] || !d.rows["TM-1"] || d.rows["TM-2"] {
		t.Errorf("rows %v", d.rows)
	}
	if !d.hasLabel("1", "Pitfall") || !d.hasLabel("1", "Dial backoff") || d.hasLabel("1.2", "Pitfall") || !d.hasLabel("", "Conventions") ||
		d.hasLabel("1", "Dial backof") || !d.hasLabel("", "Pitfalls") || d.hasLabel("", "Pitfalls see") {
		t.Error("hasLabel")
	}

	files := []repoFile{
		{rel: "a.go", text: "// see docs/X.md §1.2 \"Dial backoff\", docs/Y.md pitfalls 2, 4 and\n// 10; WIRE.md §7 (not this: §8).\nvar _ = 1 // the §3 handshake"},
		{rel: "b.md", text: "Read `docs/X.md` §1 and `testdata/README.md`; CHANGELOG.md §4 is not ours. docs/Z.md \"Rules\" ok."},
	}
	var got []string
	for _, c := range findCitations(files) {
		got = append(got, c.at+" "+c.doc+" ["+strings.Join(strings.Fields(c.tail), " ")+"]")
	}
	want := []string{
		`a.go:1 docs/X.md [§1.2 "Dial backoff",]`,
		`a.go:1 docs/Y.md [pitfalls 2, 4 and 10]`,
		`a.go:2 docs/WIRE.md [§7]`,
		`b.md:1 docs/X.md [§1 and]`,
		`b.md:1 docs/Z.md ["Rules" ok]`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("citations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	probs := checkCitation(citation{at: "a.go:1", doc: "docs/X.md", tail: ` §1.2 "Dial backoff", §1 "Nope", §4, rule 3, rules 3 and 4, pitfall 10`}, d)
	wantProbs := []string{
		`a.go:1: docs/X.md: no heading or label "Nope" in §1`,
		`a.go:1: docs/X.md: no section §4`,
		`a.go:1: docs/X.md: no rule 4`,
	}
	if strings.Join(probs, "\n") != strings.Join(wantProbs, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(probs, "\n"), strings.Join(wantProbs, "\n"))
	}
}
