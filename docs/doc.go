// Package docs holds Switchyard's own documentation: WIRE.md (the wire protocol as Switchyard
// implements it, numbered by section), ARCHITECTURE.md (the data path, the packages, the design
// rules and coding conventions, files on disk, departures from CometBFT), RELIABILITY.md (the
// fault catalogue, each row mapped to the tests that show it) and INTEROP.md (running CometBFT beside
// Switchyard, the pitfalls, the interop tests).
//
// The package has no Go API. Its tests keep the documentation honest:
//
//   - every citation in the repository's .go, .proto and .md files resolves: `docs/WIRE.md §3.2`
//     names a section that exists, `docs/ARCHITECTURE.md rule 4`, `convention 6` and
//     `docs/INTEROP.md pitfall 10` name numbered items that exist, a quoted heading or label
//     (`docs/ARCHITECTURE.md "Files on disk"`, `docs/WIRE.md §7.3 "Dial backoff"`) is found where
//     it is cited, and every reliability row or anchor ID (H-09, TM-21) is defined in
//     RELIABILITY.md. A citation written without the docs/ prefix (`WIRE.md §3`) is checked as if it
//     had it; one naming a document that does not exist in docs/ fails;
//   - every test named in these documents as `package: TestName` exists in that package;
//   - no file refers to anything outside the repository (the specifications the project was
//     started from are not part of it).
//
// Run them with `go test ./docs`.
package docs
