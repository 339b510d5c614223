#!/usr/bin/env python3
"""md2man.py: turn tally's Markdown docs into man pages (roff, man(7)).

The docs in docs/ and schemas/ are the one reference; the man pages are made
from them at build time so the two cannot drift. Only the Markdown the docs
use is understood: headings, paragraphs, `-` and `1.` lists, fenced and
indented code blocks, pipe tables, `code`, **bold** and *italic*. Files
after the first are appended: their title becomes a section, their ##
headings subsections. A table becomes a list of tagged paragraphs (its first column the tag, the middle columns
"header: value", the last column the text), which reads well at any
terminal width. Anything else is an error, so a doc change that the man
page would garble fails the build instead.

usage: md2man.py --name NAME --section N --summary TEXT [--version V] [--date D]
                 [--skip-title] FILE.md... > NAME.N
"""
import argparse
import re
import sys


def esc(text):
    """Escape roff specials in running text, then render inline Markdown."""
    out = []
    # split on `code` spans first so their contents are not touched by **
    for i, part in enumerate(re.split(r'(`[^`]*`)', text)):
        if i % 2 == 1:
            out.append('\\fB' + raw(part[1:-1]) + '\\fR')
        else:
            p = raw(part)
            p = re.sub(r'\*\*([^*]+)\*\*', r'\\fB\1\\fR', p)
            p = re.sub(r'(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])', r'\\fI\1\\fR', p)
            out.append(p)
    return ''.join(out)


NAMED = {'\u00d7': '\\(mu', '\u2013': '\\(en', '\u2014': '\\(em', '\u2265': '\\(>=',
         '\u2264': '\\(<=', '\u2192': '\\(->', '\u00b7': '\\(pc', '\u2026': '...',
         '\u2018': '\\(oq', '\u2019': '\\(cq', '\u201c': '\\(lq', '\u201d': '\\(rq'}


def box(c):
    """Box-drawing and arrows of diagrams, as ASCII (no man font has them)."""
    if c in '\u2500\u2501':
        return '-'
    if c in '\u2502\u2503':
        return '|'
    if c in '\u25b6\u25ba':
        return '>'
    if '\u2500' <= c <= '\u257f':
        return '+'
    return None


def raw(text):
    text = text.replace('\\', '\\e').replace('-', '\\-')
    return ''.join(c if ord(c) < 128 else box(c) or NAMED.get(c, '\\[u%04X]' % ord(c))
                   for c in text)


def line_safe(s):
    """A roff text line must not start with . or '."""
    return '\\&' + s if s[:1] in ('.', "'") else s


class Converter:
    def __init__(self, out):
        self.out = out
        self.in_section = False

    def emit(self, s):
        if not self.in_section and not s.startswith('.SH'):
            self.out.append('.SH DESCRIPTION')
        self.in_section = True
        if s == '.PP' and self.out[-1].startswith(('.SH', '.SS')):
            return   # a heading already starts a paragraph
        self.out.append(s)

    def para(self, lines):
        if lines:
            self.emit('.PP')
            self.emit(line_safe(esc(' '.join(l.strip() for l in lines))))

    def code(self, lines):
        self.emit('.PP')
        self.emit('.RS 4')
        self.emit('.nf')
        for l in lines:
            self.emit(line_safe(raw(l)) if l else '')
        self.emit('.fi')
        self.emit('.RE')

    def table(self, rows, where):
        # cells split on unescaped |; \\| is a | inside a cell
        cells = [[c.strip().replace('\\|', '|')
                  for c in re.split(r'(?<!\\)\|', r.strip()[1:-1] if r.strip().endswith('|') else r.strip()[1:])]
                 for r in rows]
        if len(cells) < 2 or not re.fullmatch(r'[-:| ]+', rows[1].strip()):
            sys.exit(f'{where}: a table needs a header and a |---| line')
        head, body = cells[0], cells[2:]
        for r in body:
            if len(r) != len(head):
                sys.exit(f'{where}: a table row has {len(r)} cells, the header {len(head)}')
            self.emit('.TP')
            self.emit(line_safe(esc(r[0])))
            if len(r) > 2:
                mid = '; '.join(f'{head[i]}: {r[i]}' for i in range(1, len(r) - 1)
                                if r[i] not in ('', '-'))
                if mid:
                    self.emit(line_safe(esc(mid)))
                    self.emit('.br')
            if len(r) > 1:
                self.emit(line_safe(esc(r[-1])))

    def convert(self, path, skip_title, appended):
        text = open(path, encoding='utf-8').read().split('\n')
        i, n = 0, len(text)
        para = []
        titled = False
        while i < n:
            l = text[i]
            where = f'{path}:{i + 1}'
            if l.startswith('```'):
                self.para(para); para = []
                j = i + 1
                while j < n and not text[j].startswith('```'):
                    j += 1
                if j == n:
                    sys.exit(f'{where}: a code block that never ends')
                self.code(text[i + 1:j])
                i = j + 1
                continue
            if l.startswith('    ') and not para:
                block = []
                while i < n and (text[i].startswith('    ') or not text[i].strip()):
                    block.append(text[i][4:])
                    i += 1
                while block and not block[-1].strip():
                    block.pop()
                self.code(block)
                continue
            if not l.strip():
                self.para(para); para = []
                i += 1
                continue
            m = re.match(r'(#{1,4}) (.*)', l)
            if m:
                self.para(para); para = []
                level, title = len(m.group(1)), m.group(2)
                if level == 1 and skip_title and not titled and not appended:
                    titled = True
                elif level == 1 or (level == 2 and not appended):
                    self.emit('.SH ' + esc(title.upper().replace('`', '')))
                else:
                    self.emit('.SS ' + esc(title.replace('`', '')))
                i += 1
                continue
            if l.startswith('|'):
                self.para(para); para = []
                rows = []
                while i < n and text[i].startswith('|'):
                    rows.append(text[i])
                    i += 1
                self.table(rows, where)
                continue
            m = re.match(r'(- |\d+\. )(.*)', l)
            if m and not para:
                item = [m.group(2)]
                i += 1
                while i < n and text[i].startswith('  ') and text[i].strip():
                    item.append(text[i])
                    i += 1
                bullet = '\\(bu' if m.group(1) == '- ' else m.group(1).strip()
                self.emit(f'.IP {bullet} 4')
                self.emit(line_safe(esc(' '.join(x.strip() for x in item))))
                continue
            para.append(l)
            i += 1
        self.para(para)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--name', required=True)
    ap.add_argument('--section', required=True)
    ap.add_argument('--summary', required=True)
    ap.add_argument('--version', default='')
    ap.add_argument('--date', default='')
    ap.add_argument('--skip-title', action='store_true')
    ap.add_argument('files', nargs='+')
    a = ap.parse_args()
    out = [f'.\\" generated from {", ".join(a.files)} by scripts/md2man.py: do not edit',
           f'.TH {a.name.upper()} {a.section} "{a.date}" "tally {a.version}" "tally manual"',
           '.SH NAME', f'{raw(a.name)} \\- {esc(a.summary)}']
    c = Converter(out)
    for k, f in enumerate(a.files):
        c.convert(f, a.skip_title, k > 0)
    sys.stdout.write('\n'.join(out) + '\n')


if __name__ == '__main__':
    main()
