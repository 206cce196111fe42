"""Make feed bytes safe and well-labelled before a parser sees them.

* `defuse_doctype`: rewrites the DOCTYPE so that only short literal entities survive. Dropped: external
  entities (``SYSTEM "file:///etc/passwd"``), parameter entities, entities that reference other entities
  (billion laughs), long entity values (quadratic blow-up), the external DTD reference. feedparser has its own,
  line-based version of this (sanitizer.replace_doctype) that a DOCTYPE sharing a line with the XML
  declaration slips past; expat's amplification limit then still stops a bomb, but feedparser's fallback
  parser would expand the "safe" long entities. This pass closes both gaps.
* `drop_space_before_declaration`: whitespace before ``<?xml`` (a stray newline from a template or a PHP
  include) makes a document not well-formed, and feedparser's lenient parser then reads it differently
  (escapes left in ids and links, markup re-serialised): the same feed flipping between the two readings would
  change its entries' keys. Removed, the document is the well-formed one it was meant to be.
* `xml_content_type`: the Content-Type handed to feedparser. Always an XML media type (RFC 3023's "text/xml
  means us-ascii" and "text/html is not XML" rules only add noise), with the HTTP charset kept only when it
  is believable: a header that says ISO-8859-1 for a body that is valid multi-byte UTF-8, or that contradicts
  the document's own declaration with a charset under which any bytes decode, is dropped. A declaration of
  UTF-16/32 on a body without NUL bytes is overridden by UTF-8 (or windows-1252).
"""

from __future__ import annotations

import codecs
import re

MAX_ENTITY_VALUE = 64
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?\?>")
_DECL_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_LITERAL_ENTITY = re.compile(rb"""<!ENTITY\s+([A-Za-z_][\w.-]*)\s+(?:"([^"]*)"|'([^']*)')\s*>""")
_CHAR_REF = re.compile(rb"^&#(?:[0-9]{1,7}|x[0-9A-Fa-f]{1,6});$")
_DOCTYPE_NAME = re.compile(rb"<!DOCTYPE\s+([A-Za-z_][\w.:-]*)", re.IGNORECASE)
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WIDE_MARKERS = ((b"<\x00?\x00", "utf-16-le"), (b"\x00<\x00?", "utf-16-be"))
_ALWAYS_DECODES = frozenset({"iso-8859-1", "latin-1", "latin1", "iso8859-1", "l1", "windows-1252", "cp1252", "us-ascii", "ascii"})
_WIDE_NAMES = ("utf-16", "utf16", "utf-32", "utf32", "ucs-2", "ucs-4", "iso-10646-ucs-2", "iso-10646-ucs-4", "unicode")


def _to_utf8_if_wide(body: bytes) -> bytes:
    """UTF-16/32 documents (by BOM or by the '<?' pattern) re-encoded as UTF-8 with a matching declaration."""
    codec = next((name for bom, name in _WIDE_BOMS if body.startswith(bom)), None)
    if codec is None:
        codec = next((name for marker, name in _WIDE_MARKERS if body.startswith(marker)), None)
    if codec is None:
        return body
    try:
        text = body.decode(codec)
    except UnicodeDecodeError:
        return body
    data = text.lstrip("\ufeff").encode("utf-8")
    declaration = _XML_DECL.match(data)
    if declaration:
        fixed = _DECL_ENCODING.sub(b'encoding="utf-8"', declaration.group(0))
        data = fixed + data[declaration.end():]
    return data


def _skip(data: bytes, position: int, opener: bytes, closer: bytes) -> int:
    if data.startswith(opener, position):
        end = data.find(closer, position + len(opener))
        return len(data) if end < 0 else end + len(closer)
    return position


def _doctype_end(data: bytes, start: int) -> int:
    """Index just past the DOCTYPE starting at `start`, honouring quotes, comments and the [internal subset]."""
    depth = 0
    position = start + 9
    length = len(data)
    while position < length:
        char = data[position : position + 1]
        if char in (b'"', b"'"):
            end = data.find(char, position + 1)
            position = length if end < 0 else end + 1
            continue
        if data.startswith(b"<!--", position):
            position = _skip(data, position, b"<!--", b"-->")
            continue
        if char == b"[":
            depth += 1
        elif char == b"]":
            depth = max(0, depth - 1)
        elif char == b">" and depth == 0:
            return position + 1
        position += 1
    return length


def _safe_entities(subset: bytes) -> list[bytes]:
    kept = []
    for match in _LITERAL_ENTITY.finditer(subset):
        name, value = match.group(1), match.group(2) if match.group(2) is not None else match.group(3)
        if _CHAR_REF.match(value) or (len(value) <= MAX_ENTITY_VALUE and not re.search(rb"[&%<\"]", value)):
            kept.append(b'<!ENTITY ' + name + b' "' + value + b'">')
    return kept


_SPACE_THEN_DECLARATION = re.compile(rb"^(\xef\xbb\xbf)?[ \t\r\n]+(?=<\?xml[ \t\r\n])")


def drop_space_before_declaration(body: bytes) -> bytes:
    """The document without the whitespace in front of its XML declaration (a UTF-8 BOM is kept)."""
    return _SPACE_THEN_DECLARATION.sub(lambda match: match.group(1) or b"", body, count=1)


def defuse_doctype(body: bytes) -> bytes:
    """The document with its DOCTYPE reduced to short literal entities (or removed). See the module docstring."""
    data = _to_utf8_if_wide(body)
    position = 0
    length = len(data)
    if data.startswith(codecs.BOM_UTF8):
        position = 3
    while position < length:  # walk the prolog: whitespace, <?pi?>, <!-- comments -->
        while position < length and data[position : position + 1] in b" \t\r\n":
            position += 1
        after = _skip(data, position, b"<?", b"?>")
        after = _skip(data, after, b"<!--", b"-->")
        if after == position:
            break
        position = after
    if not data[position : position + 9].upper() == b"<!DOCTYPE":
        return data
    end = _doctype_end(data, position)
    doctype = data[position:end]
    name = _DOCTYPE_NAME.match(doctype)
    entities = _safe_entities(doctype)
    if name and entities:
        replacement = b"\n<!DOCTYPE " + name.group(1) + b" [\n" + b"\n".join(entities) + b"\n]>\n"
    else:
        replacement = b"\n"
    return data[:position] + replacement + data[end:]


def content_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type, lower-cased; None when it has none."""
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            value = value.strip().strip("\"'").lower()
            return value or None
    return None


def _decodes(body: bytes, encoding: str) -> bool:
    try:
        body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def xml_content_type(content_type: str | None, body: bytes) -> str:
    """The Content-Type to give feedparser for `body` (already passed through `defuse_doctype`)."""
    http_charset = content_charset(content_type)
    declaration = _XML_DECL.match(body[:512])
    declared = None
    if declaration:
        found = _DECL_ENCODING.search(declaration.group(0))
        declared = found.group(1).decode("ascii").lower() if found else None
    head = body[:64]
    ascii_compatible = b"\x00" not in head
    non_ascii = not body.isascii()
    charset = http_charset
    if charset is not None:
        if not _decodes(body, charset):
            charset = None
        elif charset in _ALWAYS_DECODES and non_ascii and _decodes(body, "utf-8"):
            charset = None  # valid multi-byte UTF-8 is no accident; the header is a server default
        elif charset in _ALWAYS_DECODES and declared and declared not in _ALWAYS_DECODES and _decodes(body, declared):
            charset = None  # the document's own declaration is more specific than a server default
    if charset is None and declared and declared.startswith(_WIDE_NAMES) and ascii_compatible:
        charset = "utf-8" if _decodes(body, "utf-8") else "windows-1252"
    return "application/xml" + (f"; charset={charset}" if charset else "")
