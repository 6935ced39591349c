#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""check-marked.py SRCDIR: the source half of tests/i18n/check-po.sh.

Fails when po/POTFILES is unsorted, lists a file that does not exist, or
misses a file under agent/, gui/ or platform/ that marks strings; when a
GtkBuilder file has a user-visible property that is not translatable="yes";
or when C code passes a bare string literal to a GTK/GLib call that shows it
to the user. Deliberate exceptions go in tests/i18n/unmarked-allowed.txt.
Regular expressions, not a parser: good enough for code in house style.
"""
import os
import re
import sys
import xml.etree.ElementTree as ET

SCANNED_DIRS = ['agent', 'gui', 'platform']

# A call of gettext in one of its forms, as xgettext is told by meson's glib preset.
MARK_CALL = re.compile(r'(?<![A-Za-z0-9_])(?:_|N_|C_|NC_|Q_|gettext|ngettext|g_dgettext|'
                       r'g_dcgettext|g_dngettext|g_dpgettext2)\s*\(')

# Properties and menu attributes whose text a user reads.
UI_PROPERTIES = {'label', 'title', 'tooltip-text', 'tooltip-markup', 'text', 'placeholder-text',
                 'secondary-text', 'subtitle'}

# Function -> which argument (1-based) the user reads. g_print and g_printerr
# are checked in the command-line client only: elsewhere they are debugging.
USER_CALLS = {
    'gtk_label_new': 1,
    'gtk_label_new_with_mnemonic': 1,
    'gtk_label_set_text': 2,
    'gtk_label_set_markup': 2,
    'gtk_label_set_text_with_mnemonic': 2,
    'gtk_button_new_with_label': 1,
    'gtk_button_new_with_mnemonic': 1,
    'gtk_button_set_label': 2,
    'gtk_check_button_new_with_label': 1,
    'gtk_check_button_new_with_mnemonic': 1,
    'gtk_menu_item_new_with_label': 1,
    'gtk_menu_item_new_with_mnemonic': 1,
    'gtk_menu_item_set_label': 2,
    'gtk_check_menu_item_new_with_label': 1,
    'gtk_check_menu_item_new_with_mnemonic': 1,
    'gtk_window_set_title': 2,
    'gtk_header_bar_set_title': 2,
    'gtk_header_bar_set_subtitle': 2,
    'gtk_widget_set_tooltip_text': 2,
    'gtk_widget_set_tooltip_markup': 2,
    'gtk_entry_set_placeholder_text': 2,
    'gtk_dialog_add_button': 2,
    'gtk_message_dialog_new': 5,
    'gtk_message_dialog_format_secondary_text': 2,
    'gtk_status_icon_set_tooltip_text': 2,
    'gtk_status_icon_set_title': 2,
    'app_indicator_set_title': 2,
    'g_notification_new': 1,
    'g_notification_set_title': 2,
    'g_notification_set_body': 2,
    'g_notification_add_button': 2,
    'g_menu_append': 2,
    'g_menu_item_new': 1,
}
CLI_CALLS = {'g_print': 1, 'g_printerr': 1}
# pinholectl: every C file of agent/ctl/, however it is split.
CLI_DIR = 'agent/ctl/'


def is_cli(name):
    return name.startswith(CLI_DIR) and name.endswith('.c')


STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
PRINTF = re.compile(r"%(?:\d+\$)?[-+ #0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?"
                    r'(?:hh|h|ll|l|L|q|j|z|Z|t)?[diouxXeEfFgGaAcsSpn%]')


def words_in(text):
    """Whether TEXT says something: letters left once printf conversions,
    {placeholders}, markup tags and escapes are gone."""
    text = PRINTF.sub('', text)
    text = re.sub(r'\{[^{}]*\}|<[^<>]*>|&[a-z]+;|\\[ntr"\\]', '', text)
    return re.search(r'[^\W\d_]', text) is not None


def strip_comments(code):
    """C comments blanked out (lines kept), strings left alone."""
    out = []
    i = 0
    n = len(code)
    while i < n:
        c = code[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and code[j] != c:
                j += 2 if code[j] == '\\' else 1
            out.append(code[i:j + 1])
            i = j + 1
        elif code.startswith('/*', i):
            j = code.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', code[i:j]))
            i = j
        elif code.startswith('//', i):
            j = code.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def call_arguments(code, start):
    """The top-level arguments of the call whose '(' is at START, and the
    index just past its ')'."""
    args = []
    depth = 0
    i = start
    begin = start + 1
    while i < len(code):
        c = code[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < len(code) and code[j] != c:
                j += 2 if code[j] == '\\' else 1
            i = j + 1
            continue
        if c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
            if depth == 0:
                args.append(code[begin:i])
                return args, i + 1
        elif c == ',' and depth == 1:
            args.append(code[begin:i])
            begin = i + 1
        i += 1
    args.append(code[begin:])
    return args, len(code)


def without_marked(arg):
    """ARG with every gettext call (and its arguments) taken out."""
    while True:
        m = MARK_CALL.search(arg)
        if not m:
            return arg
        _, end = call_arguments(arg, m.end() - 1)
        arg = arg[:m.start()] + arg[end:]


def load_allowed(path):
    allowed = set()
    if not os.path.exists(path):
        return allowed
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.rstrip('\n')
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            if '|' not in line:
                sys.exit(f'{path}: expected FILE|TEXT, got: {line}')
            name, text = line.split('|', 1)
            allowed.add((name.strip(), text))
    return allowed


def scanned_files(srcdir):
    for top in SCANNED_DIRS:
        root = os.path.join(srcdir, top)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(('.c', '.h', '.ui')):
                    yield os.path.relpath(os.path.join(dirpath, name), srcdir)


def check_potfiles(srcdir, files, problems):
    path = os.path.join(srcdir, 'po', 'POTFILES')
    with open(path, encoding='utf-8') as f:
        listed = [l.strip() for l in f if l.strip() and not l.lstrip().startswith('#')]
    if listed != sorted(listed) or len(set(listed)) != len(listed):
        problems.append('po/POTFILES: not sorted, or a file listed twice (LC_ALL=C sort -u)')
    for name in listed:
        if not os.path.isfile(os.path.join(srcdir, name)):
            problems.append(f'po/POTFILES: {name} does not exist')
    for name in files:
        with open(os.path.join(srcdir, name), encoding='utf-8', errors='replace') as f:
            text = f.read()
        if name.endswith('.ui'):
            marks = 'translatable="yes"' in text
        else:
            marks = MARK_CALL.search(strip_comments(text)) is not None
        if marks and name not in listed:
            problems.append(f'po/POTFILES: {name} has translatable strings but is not listed')


def check_ui(srcdir, name, allowed, problems):
    path = os.path.join(srcdir, name)
    try:
        tree = ET.parse(path)
    except ET.ParseError as e:
        problems.append(f'{name}: not well-formed XML: {e}')
        return
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    for el in tree.iter():
        if el.tag not in ('property', 'attribute'):
            continue
        prop = el.get('name', '').replace('_', '-')
        if prop not in UI_PROPERTIES:
            continue
        value = (el.text or '').strip()
        if not value or not words_in(value):
            continue
        if el.get('translatable') == 'yes' or (name, value) in allowed:
            continue
        lineno = next((i + 1 for i, l in enumerate(lines) if value in l), 0)
        problems.append(f'{name}:{lineno}: <{el.tag} name="{prop}">{value}</{el.tag}> '
                        'needs translatable="yes" (or a line in tests/i18n/unmarked-allowed.txt)')


def check_c(srcdir, name, allowed, problems):
    with open(os.path.join(srcdir, name), encoding='utf-8', errors='replace') as f:
        code = strip_comments(f.read())
    calls = dict(USER_CALLS)
    if is_cli(name):
        calls.update(CLI_CALLS)
    pattern = re.compile(r'(?<![A-Za-z0-9_])(' + '|'.join(map(re.escape, calls)) + r')\s*\(')
    for m in pattern.finditer(code):
        args, _ = call_arguments(code, m.end() - 1)
        want = calls[m.group(1)]
        if len(args) < want:
            continue
        for s in STRING.finditer(without_marked(args[want - 1])):
            literal = s.group(0)[1:-1]
            if not words_in(literal) or (name, literal) in allowed:
                continue
            lineno = code.count('\n', 0, m.start()) + 1
            problems.append(f'{name}:{lineno}: {m.group(1)} shows "{literal}" untranslated: '
                            'wrap it in _() (or add a line to tests/i18n/unmarked-allowed.txt)')


def main():
    srcdir = sys.argv[1] if len(sys.argv) > 1 else '.'
    allowed = load_allowed(os.path.join(srcdir, 'tests', 'i18n', 'unmarked-allowed.txt'))
    files = list(scanned_files(srcdir))
    problems = []
    check_potfiles(srcdir, files, problems)
    for name in files:
        if name.endswith('.ui'):
            check_ui(srcdir, name, allowed, problems)
        elif name.endswith('.c') and (name.startswith('gui/') or is_cli(name)):
            check_c(srcdir, name, allowed, problems)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
