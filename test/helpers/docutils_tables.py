#!/usr/bin/python3
"""Reads a JSON list of reStructuredText documents on stdin and prints, for each, every table docutils
finds (head and body rows, one string per column: a cell spanning columns sits in its first column and
the columns it covers are '') and every system message of level WARNING or above, as one JSON list.
With --structure, each table also has `structure`: per body cell, the names of the elements inside it
('paragraph' for a cell that is plain text), so that markup which keeps the text (a comment, a list, an
INFO message about a short transition) still shows.
One process for many documents: starting Python and importing docutils is the slow part."""
import json
import sys

import docutils
import docutils.core
from docutils import nodes


def expand(rows, ncols, value=lambda entry: entry.astext(), empty=''):
    out = []
    occupied = set()
    for r, row in enumerate(rows):
        cells = [empty] * ncols
        c = 0
        for entry in row.children:
            while (r, c) in occupied:
                c += 1
            if c < ncols:
                cells[c] = value(entry)
            morerows = entry.get('morerows', 0)
            morecols = entry.get('morecols', 0)
            for dr in range(morerows + 1):
                for dc in range(morecols + 1):
                    occupied.add((r + dr, c + dc))
            c += morecols + 1
        out.append(cells)
    return out


def structure(entry):
    return ','.join(n.tagname for n in entry.findall(include_self=False) if not isinstance(n, nodes.Text))


def tables_of(document, with_structure=False):
    result = []
    for table in document.findall(nodes.table):
        tgroup = next(n for n in table.children if isinstance(n, nodes.tgroup))
        ncols = tgroup['cols']
        head = [n for n in tgroup.children if isinstance(n, nodes.thead)]
        body = [n for n in tgroup.children if isinstance(n, nodes.tbody)]
        table_result = {
            'head': expand([r for h in head for r in h.children], ncols),
            'body': expand([r for b in body for r in b.children], ncols),
        }
        if with_structure:
            table_result['structure'] = expand([r for b in body for r in b.children], ncols, structure)
        result.append(table_result)
    return result


def main():
    with_structure = '--structure' in sys.argv[1:]
    sources = json.load(sys.stdin)
    results = []
    for source in sources:
        document = docutils.core.publish_doctree(source, settings_overrides={
            'report_level': 5, 'halt_level': 5, 'warning_stream': False, 'input_encoding': 'unicode',
            'file_insertion_enabled': False, 'raw_enabled': False,
        })
        messages = [
            {'level': m['level'], 'line': m.get('line'), 'text': m.astext()}
            for m in document.findall(nodes.system_message) if m['level'] >= 2
        ]
        results.append({'tables': tables_of(document, with_structure), 'messages': messages})
    json.dump({'docutils': docutils.__version__, 'results': results}, sys.stdout, ensure_ascii=False)


if __name__ == '__main__':
    main()
