"""Self-contained HTML reports for people: shared building blocks (`html`) and the pages built on them."""
