#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""admx-check.py: the checks of tests/policy/test-admx.sh that a schema cannot make.

  admx-check.py refs ADMX ADML...
      every $(string.X) and $(presentation.X) of ADMX is in each ADML, and nothing else is;
      each presentation shows exactly its policy's elements, with the box that fits each
      (decimalTextBox for decimal, textBox for text, dropdownList for enum) and a default the
      element allows; categories and supportedOn are defined where they are referenced; every
      key is under Software\\Policies\\Pinhole\\; the ADMLs other than en-US are translated
      (each explanation has CJK characters when the culture is zh-*)
  admx-check.py keys ADMX ALL-KEYS EXCLUDED README
      the policies are the table's keys (ALL-KEYS, one group.key a line) but the EXCLUDED ones,
      each policy writes its key's value name under its group, and README names every
      excluded key
  admx-check.py values ADMX ADML OUTDIR
      writes OUTDIR/variant-N.conf: the configuration text the agent would read from the
      registry (ph-policy.c: [group] and value=text, a number in decimal) with every policy
      Enabled, the Nth of its values each time (a number's minimum, maximum and default, each
      item of a list, the box's default, true and false); the caller hands each to
      pinhole-agent --check-config

Prints what is wrong and exits 1 if anything is.
"""
import os
import re
import sys
import xml.etree.ElementTree as ET

NS = {'pd': 'http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions'}
POLICY_ROOT = 'Software\\Policies\\Pinhole\\'
STRING_REF = re.compile(r'^\$\(string\.([A-Za-z0-9_]+)\)$')
PRESENTATION_REF = re.compile(r'^\$\(presentation\.([A-Za-z0-9_]+)\)$')
BOX_FOR = {'decimal': 'decimalTextBox', 'text': 'textBox', 'enum': 'dropdownList'}

problems = []


def problem(text):
    problems.append(text)


def tag(el):
    return el.tag.split('}', 1)[1]


def string_refs(admx):
    """Every $(string.X) of the ADMX, with where it is used."""
    refs = {}
    for el in admx.iter():
        for attr in ('displayName', 'explainText'):
            value = el.get(attr)
            if value is None:
                continue
            m = STRING_REF.match(value)
            if m is None:
                problem(f'{tag(el)} {el.get("name", "")}: {attr}="{value}" is not $(string.ID)')
            else:
                refs[m.group(1)] = f'{tag(el)} {el.get("name", "")} {attr}'
    return refs


def check_refs(admx_path, adml_paths):
    admx = ET.parse(admx_path).getroot()
    refs = string_refs(admx)
    categories = {c.get('name') for c in admx.iterfind('pd:categories/pd:category', NS)}
    supported = {d.get('name') for d in admx.iterfind('pd:supportedOn/pd:definitions/pd:definition', NS)}
    for el in admx.iter():
        if tag(el) == 'parentCategory' and el.get('ref') not in categories:
            problem(f'parentCategory ref="{el.get("ref")}" names no category of this file')
        if tag(el) == 'supportedOn' and el.get('ref') is not None and el.get('ref') not in supported:
            problem(f'supportedOn ref="{el.get("ref")}" names no definition of this file')
    policies = admx.findall('pd:policies/pd:policy', NS)
    if not policies:
        problem(f'{admx_path}: no policies')
    presentations = {}
    for p in policies:
        name = p.get('name')
        if not p.get('key', '').startswith(POLICY_ROOT):
            problem(f'policy {name}: key="{p.get("key")}" is not under {POLICY_ROOT}')
        elements = p.findall('pd:elements/*', NS)
        pres = p.get('presentation')
        if pres is None:
            if elements:
                problem(f'policy {name}: elements but no presentation')
            if p.find('pd:enabledValue', NS) is None or p.get('valueName') is None:
                problem(f'policy {name}: neither elements nor a valueName with enabledValue')
            continue
        m = PRESENTATION_REF.match(pres)
        if m is None:
            problem(f'policy {name}: presentation="{pres}" is not $(presentation.ID)')
            continue
        presentations[m.group(1)] = (name, elements)

    for adml_path in adml_paths:
        adml = ET.parse(adml_path).getroot()
        culture = os.path.basename(os.path.dirname(os.path.abspath(adml_path)))
        strings = {s.get('id'): s.text or '' for s in adml.iterfind('pd:resources/pd:stringTable/pd:string', NS)}
        for sid, where in sorted(refs.items()):
            if sid not in strings:
                problem(f'{adml_path}: no string {sid} ({where})')
            elif not strings[sid].strip():
                problem(f'{adml_path}: string {sid} is empty')
        for sid in sorted(set(strings) - set(refs)):
            problem(f'{adml_path}: string {sid} is not used by the ADMX')
        if culture.startswith('zh-'):
            for sid, text in strings.items():
                if sid.endswith('_Explain') and not re.search('[\u4e00-\u9fff]', text):
                    problem(f'{adml_path}: {sid} is not translated')
        pres_table = {p.get('id'): p for p in adml.iterfind('pd:resources/pd:presentationTable/pd:presentation', NS)}
        for pid in sorted(set(pres_table) - set(presentations)):
            problem(f'{adml_path}: presentation {pid} is not used by the ADMX')
        for pid, (policy, elements) in sorted(presentations.items()):
            if pid not in pres_table:
                problem(f'{adml_path}: no presentation {pid} (policy {policy})')
                continue
            boxes = {b.get('refId'): b for b in pres_table[pid] if b.get('refId') is not None}
            ids = {e.get('id'): e for e in elements}
            if set(boxes) != set(ids):
                problem(f'{adml_path}: presentation {pid} shows {sorted(boxes)}, the policy has {sorted(ids)}')
                continue
            for eid, e in ids.items():
                box = boxes[eid]
                if tag(box) != BOX_FOR.get(tag(e)):
                    problem(f'{adml_path}: {pid}: {tag(e)} {eid} is shown in a {tag(box)}')
                    continue
                if tag(e) == 'decimal' and box.get('defaultValue') is not None:
                    low, high, default = int(e.get('minValue', '0')), int(e.get('maxValue', '9999')), int(box.get('defaultValue'))
                    if not low <= default <= high:
                        problem(f'{adml_path}: {pid}: default {default} outside {low}..{high}')
                if tag(e) == 'enum' and box.get('defaultItem') is not None:
                    if int(box.get('defaultItem')) >= len(e.findall('pd:item', NS)):
                        problem(f'{adml_path}: {pid}: defaultItem {box.get("defaultItem")} is past the items')


def read_lines(path):
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]


def check_keys(admx_path, all_path, excluded_path, readme_path):
    admx = ET.parse(admx_path).getroot()
    all_keys = read_lines(all_path)
    excluded = read_lines(excluded_path)
    with open(readme_path, encoding='utf-8') as f:
        readme = f.read()
    seen = {}
    for p in admx.iterfind('pd:policies/pd:policy', NS):
        group = p.get('key', '')[len(POLICY_ROOT):]
        names = [e.get('valueName') for e in p.findall('pd:elements/*', NS)]
        if p.get('valueName') is not None:
            names.append(p.get('valueName'))
        if len(names) != 1:
            problem(f'policy {p.get("name")}: writes {names}, not one value')
            continue
        key = f'{group}.{names[0]}'
        if key in seen:
            problem(f'{key}: set by both {seen[key]} and {p.get("name")}')
        seen[key] = p.get('name')
    for key in all_keys:
        if key in excluded and key in seen:
            problem(f'{key}: excluded, yet policy {seen[key]} sets it')
        elif key not in excluded and key not in seen:
            problem(f'{key}: no policy sets it (add one, or exclude it in ph-admx-gen.c and the README)')
        if key in excluded and f'`{key}`' not in readme:
            problem(f'{key}: excluded, but {readme_path} does not name it (as `{key}`)')
    for key in sorted(set(seen) - set(all_keys)):
        problem(f'{key}: policy {seen[key]} sets a key the agent does not have')
    for key in excluded:
        if key not in all_keys:
            problem(f'{key}: excluded, but not a key')


def check_values(admx_path, adml_path, outdir):
    admx = ET.parse(admx_path).getroot()
    adml = ET.parse(adml_path).getroot()
    boxes = {}
    for pres in adml.iterfind('pd:resources/pd:presentationTable/pd:presentation', NS):
        for box in pres:
            boxes[(pres.get('id'), box.get('refId'))] = box
    settings = []  # (group, key, [values])
    for p in admx.iterfind('pd:policies/pd:policy', NS):
        group = p.get('key')[len(POLICY_ROOT):]
        pres = PRESENTATION_REF.match(p.get('presentation') or '')
        if p.get('valueName') is not None:
            values = [v.text or '' for v in p.findall('pd:enabledValue/pd:string', NS)]
            values += [v.text or '' for v in p.findall('pd:disabledValue/pd:string', NS)]
            values += [v.get('value') for v in p.findall('pd:enabledValue/pd:decimal', NS)]
            settings.append((group, p.get('valueName'), values))
        for e in p.findall('pd:elements/*', NS):
            box = boxes.get((pres.group(1) if pres else None, e.get('id')))
            values = []
            if tag(e) == 'decimal':
                if e.get('storeAsText') == 'true':
                    problem(f'{e.get("valueName")}: storeAsText is not what the agent is handed here')
                values = [e.get('minValue', '0'), e.get('maxValue', '9999')]
                if box is not None and box.get('defaultValue') is not None:
                    values.append(box.get('defaultValue'))
            elif tag(e) == 'enum':
                values = [i.findtext('pd:value/pd:string', None, NS) for i in e.findall('pd:item', NS)]
                if None in values:
                    problem(f'{e.get("valueName")}: an item writes no string')
                    values = [v for v in values if v is not None]
            elif tag(e) == 'text':
                if e.get('expandable') == 'true':
                    problem(f'{e.get("valueName")}: REG_EXPAND_SZ is not expanded by the agent')
                default = box.findtext('pd:defaultValue', None, NS) if box is not None else None
                if default:
                    values = [default]
            settings.append((group, e.get('valueName'), values))
    n = max(len(v) for _, _, v in settings)
    os.makedirs(outdir, exist_ok=True)
    for i in range(n):
        groups = {}
        for group, key, values in settings:
            if values:
                groups.setdefault(group, {})[key] = values[i % len(values)]
        # Without a cloud proxy the agent is valid but unconfigured, which --check-config of a
        # standalone file reports as a failure.
        groups.setdefault('upstream', {}).setdefault('host', 'proxy.example.com')
        lines = []
        for group in sorted(groups):
            lines.append(f'[{group}]')
            for key in sorted(groups[group]):
                value = groups[group][key]
                if '\\' in value or '\n' in value or value != value.strip():
                    problem(f'{group}.{key}: "{value}" would be escaped by ph-policy.c')
                lines.append(f'{key}={value}')
            lines.append('')
        with open(os.path.join(outdir, f'variant-{i + 1}.conf'), 'w', encoding='utf-8') as f:
            f.write('\n'.join(lines))



def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == 'refs' and len(args) >= 2:
        check_refs(args[0], args[1:])
    elif mode == 'keys' and len(args) == 4:
        check_keys(*args)
    elif mode == 'values' and len(args) == 3:
        check_values(*args)
    else:
        sys.exit(__doc__)
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == '__main__':
    main()
