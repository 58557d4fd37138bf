//! Finds the entries of one top-level block list (`routes:`) in YAML text without parsing it,
//! so each entry can be parsed, hashed and reused on its own. Only plain layouts are split;
//! anything this scanner cannot be sure about (anchors, aliases, merge keys, flow lists,
//! several documents, tabs in the indentation) gives `None`, and the caller parses the whole
//! file as usual.

use std::ops::Range;

/// The entries of a top-level list, and the rest of the file.
#[derive(Debug, PartialEq, Eq)]
pub struct ListItems {
    /// Byte ranges of the entries, in order; each starts at its `-` line.
    pub items: Vec<Range<usize>>,
    /// 1-based line of each entry's first line.
    pub lines: Vec<usize>,
    /// The bytes of the whole list (every entry).
    pub list: Range<usize>,
    /// The file with every line of the list's entries emptied (newlines kept, so every other
    /// line keeps its number): the key remains, with no value.
    pub rest: String,
}

/// Where a line's content starts, or `None` for blank and comment-only lines.
fn indent_of(line: &str) -> Option<usize> {
    let trimmed = line.trim_start_matches(' ');
    if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.trim_end().is_empty() {
        return None;
    }
    Some(line.len() - trimmed.len())
}

/// Whether the text may hold an anchor, alias, merge key or tag (a `&`, `*` or `!` that starts
/// a token, or `<<`), a tab in a line's indentation, or a line break other than `\n` and
/// `\r\n` (the YAML parser also breaks lines at a lone `\r`, NEL, LS and PS, which would put
/// this scanner's line numbers off). Such files are left to the full parser. Each character is
/// found with a fast substring search, then only its own line is looked at.
fn needs_parser(text: &str) -> bool {
    // Substring searches (memchr underneath), not a scan character by character.
    if ["<<", "\u{85}", "\u{2028}", "\u{2029}"]
        .iter()
        .any(|s| text.contains(s))
    {
        return true;
    }
    let bytes = text.as_bytes();
    if text
        .match_indices('\r')
        .any(|(pos, _)| bytes.get(pos + 1) != Some(&b'\n'))
    {
        return true;
    }
    let line_before = |pos: usize| {
        let start = text[..pos].rfind('\n').map_or(0, |n| n + 1);
        &text.as_bytes()[start..pos]
    };
    let starts_token = |pos: usize| {
        line_before(pos)
            .iter()
            .rev()
            .find(|c| **c != b' ')
            .is_none_or(|c| matches!(c, b':' | b'-' | b'[' | b'{' | b',' | b'?'))
    };
    ['&', '*', '!']
        .iter()
        .any(|c| text.match_indices(*c).any(|(pos, _)| starts_token(pos)))
        || text
            .match_indices('\t')
            .any(|(pos, _)| line_before(pos).iter().all(|c| *c == b' '))
}

fn is_entry_start(line: &str, indent: usize) -> bool {
    let rest = &line[indent..];
    rest.starts_with("- ") || rest.trim_end() == "-"
}

/// The entries of the top-level block list `key`, when the text is laid out plainly enough to
/// find them by indentation alone.
pub fn block_list_items(text: &str, key: &str) -> Option<ListItems> {
    let header = format!("{key}:");
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        lines.push((offset, line.trim_end_matches(['\n', '\r'])));
        offset += line.len();
    }
    let mut key_line = None;
    if needs_parser(text) {
        return None;
    }
    for (n, (_, line)) in lines.iter().enumerate() {
        if (line.starts_with("---") || line.starts_with("...")) && n > 0 {
            return None;
        }
        if let Some(after) = line.strip_prefix(&header) {
            // A comment needs white space before its `#`: `routes:#x` is not the key.
            let comment = after.starts_with([' ', '\t']) && after.trim_start().starts_with('#');
            if !(after.trim().is_empty() || comment) || key_line.is_some() {
                return None;
            }
            key_line = Some(n);
        }
    }
    let key_line = key_line?;
    // The list: from the key to the first top-level line that is not one of its entries.
    let mut indent = None;
    let mut starts: Vec<usize> = Vec::new();
    let mut end = lines.len();
    for (n, (_, line)) in lines.iter().enumerate().skip(key_line + 1) {
        let Some(at) = indent_of(line) else {
            continue;
        };
        let list_indent = *indent.get_or_insert(at);
        if at == list_indent && is_entry_start(line, at) {
            starts.push(n);
        } else if at == 0 {
            // A sequence entry at the key's own column after indented entries is not a plain
            // layout (the whole file is a syntax error): the full parser reports it.
            if is_entry_start(line, 0) {
                return None;
            }
            end = n;
            break;
        } else if at <= list_indent || starts.is_empty() {
            // Less indented than the entries, or content before the first one.
            return None;
        }
    }
    if starts.is_empty() {
        return None;
    }
    // Trailing blank and comment lines belong to the rest of the file.
    while end > starts[starts.len() - 1] + 1 && indent_of(lines[end - 1].1).is_none() {
        end -= 1;
    }
    let byte_at = |n: usize| lines.get(n).map(|(o, _)| *o).unwrap_or(text.len());
    let mut items = Vec::with_capacity(starts.len());
    for (i, start) in starts.iter().enumerate() {
        let stop = starts.get(i + 1).copied().unwrap_or(end);
        items.push(byte_at(*start)..byte_at(stop));
    }
    let list = byte_at(starts[0])..byte_at(end);
    let mut rest = String::with_capacity(text.len() - list.len() + (end - starts[0]));
    rest.push_str(&text[..list.start]);
    rest.extend(std::iter::repeat_n(
        '\n',
        text[list.clone()].matches('\n').count(),
    ));
    rest.push_str(&text[list.end..]);
    Some(ListItems {
        lines: starts.iter().map(|n| n + 1).collect(),
        items,
        list,
        rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "address: :443\n# routes below\nroutes:\n  - from: https://a.example.com\n    to: http://a:80\n\n  # a comment\n  - from: https://*.example.com\n    to: |\n      - not an entry\n  -\n    from: https://c.example.com\nshared_secret: x\n";

    #[test]
    fn a_sequence_entry_at_the_keys_column_after_the_entries_is_left_to_the_parser() {
        // Found by the config loader fuzzer: the whole file is a YAML syntax error, which only
        // the full parser reports.
        let text = "routes:\n  - from: http://a.example.com\n    to: http://a:80\n- - from: http://b.example.com\n";
        assert_eq!(block_list_items(text, "routes"), None);
        // Entries at column 0 are a plain layout.
        let flush = "routes:\n- from: http://a.example.com\n  to: http://a:80\n- from: http://b.example.com\n";
        assert_eq!(
            block_list_items(flush, "routes").map(|l| l.items.len()),
            Some(2)
        );
    }

    #[test]
    fn a_hash_right_after_the_key_is_not_a_comment() {
        // Found by the config loader fuzzer: `routes:# ...` is one plain scalar in YAML (a
        // comment starts after white space), so the file is a syntax error the parser reports.
        let text = "routes:# a note\n  - from: http://a.example.com\n";
        assert_eq!(block_list_items(text, "routes"), None);
        for commented in ["routes: # a note\n", "routes:\t# a note\n", "routes:  \n"] {
            let text = format!("{commented}  - from: http://a.example.com\n");
            assert_eq!(
                block_list_items(&text, "routes").map(|l| l.lines),
                Some(vec![2]),
                "{commented:?}"
            );
        }
    }

    #[test]
    fn line_breaks_other_than_newlines_are_left_to_the_parser() {
        // Found by the config loader fuzzer: YAML breaks a line at a lone carriage return, so
        // the parser's line numbers ran one ahead of the scanner's.
        for br in ["\r", "\u{85}", "\u{2028}", "\u{2029}"] {
            let text = format!("a: 1{br}  b: 2\nroutes:\n  - from: http://a.example.com\n");
            assert_eq!(block_list_items(&text, "routes"), None, "{br:?}");
        }
        let crlf = "a: 1\r\nroutes:\r\n  - from: http://a.example.com\r\n";
        assert_eq!(
            block_list_items(crlf, "routes").map(|l| l.lines),
            Some(vec![3])
        );
    }

    #[test]
    fn finds_each_entry_and_keeps_every_other_line_in_place() {
        let split = block_list_items(TEXT, "routes").expect("plain layout");
        let items: Vec<&str> = split.items.iter().map(|r| &TEXT[r.clone()]).collect();
        assert_eq!(
            items,
            [
                "  - from: https://a.example.com\n    to: http://a:80\n\n  # a comment\n",
                "  - from: https://*.example.com\n    to: |\n      - not an entry\n",
                "  -\n    from: https://c.example.com\n",
            ]
        );
        assert_eq!(split.lines, [4, 8, 11]);
        assert_eq!(split.rest.lines().count(), TEXT.lines().count());
        assert_eq!(split.rest.lines().nth(12), Some("shared_secret: x"));
        assert_eq!(split.rest.lines().nth(2), Some("routes:"));
        assert!(!split.rest.contains("from:"));
    }

    #[test]
    fn entries_at_the_keys_own_indent() {
        let text =
            "routes:\n- from: https://a\n  to: http://a\n- from: https://b\n  to: http://b\n";
        let split = block_list_items(text, "routes").expect("split");
        assert_eq!(split.lines, [2, 4]);
    }

    #[test]
    fn leaves_what_it_cannot_be_sure_of_to_the_parser() {
        for text in [
            "routes: []\n",
            "routes:\n  - &a {from: x}\n  - *a\n",
            "base: &b\n  to: x\nroutes:\n  - <<: *b\n",
            "routes:\n  - from: !!str x\n",
            "routes:\n  - from: x\n---\nroutes:\n  - from: y\n",
            "routes:\n  - from: x\nroutes:\n  - from: y\n",
            "routes:\n    - from: x\n  - from: y\n",
            "routes:\n  from: x\n",
            "address: x\n",
            "routes:\n",
        ] {
            assert_eq!(block_list_items(text, "routes"), None, "{text:?}");
        }
    }
}
