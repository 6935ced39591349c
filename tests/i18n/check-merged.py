#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# check-merged.py DESKTOP METAINFO LANG: the desktop entry and the AppStream metainfo as
# i18n.merge_file wrote them carry LANG in full: every translatable key of the entry (Name,
# GenericName, Comment, Keywords) has a KEY[LANG] line, each different from the English one
# but Name's, and every translatable element of the metainfo (name, summary, each description
# paragraph, developer_name) has an xml:lang="LANG" twin with other text (but name's).
import configparser, sys
import xml.etree.ElementTree as ET

desktop, metainfo, lang = sys.argv[1:4]
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
problems = []

entry = configparser.RawConfigParser(strict=False, interpolation=None)
entry.optionxform = str
entry.read(desktop, encoding="utf-8")
section = entry["Desktop Entry"]
for key in ("Name", "GenericName", "Comment", "Keywords"):
    english = section.get(key)
    translated = section.get("%s[%s]" % (key, lang))
    if english is None:
        continue
    if not translated:
        problems.append("%s: no %s[%s]" % (desktop, key, lang))
    elif translated == english and key != "Name":
        problems.append("%s: %s[%s] is the English text" % (desktop, key, lang))

root = ET.parse(metainfo).getroot()
for path in ("name", "summary", "description/p", "developer_name"):
    english = [e for e in root.findall(path) if XML_LANG not in e.attrib]
    ours = [e for e in root.findall(path) if e.attrib.get(XML_LANG) == lang]
    if len(ours) != len(english):
        problems.append("%s: %d <%s> in English, %d in %s" % (metainfo, len(english), path,
                                                             len(ours), lang))
    for en, tr in zip(english, ours):
        if path != "name" and (tr.text or "").strip() == (en.text or "").strip():
            problems.append("%s: <%s xml:lang=%s> is the English text" % (metainfo, path, lang))

print("1..1")
if problems:
    print("not ok 1 - %s and %s carry %s" % (desktop, metainfo, lang))
    for p in problems:
        print("#   " + p)
    sys.exit(1)
print("ok 1 - %s and %s carry %s" % (desktop, metainfo, lang))
