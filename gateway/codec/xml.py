"""Hardened XML parsing (lxml) and the element -> dict conversion the normalisers read.

Hardening: no network access, no entity resolution, no DTD (a DOCTYPE is refused outright, which
also stops "billion laughs"), no huge-tree mode, a size limit on the input, and lxml errors wrapped
as `RejectedMessage` at this boundary.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.errors import Problem, RejectedMessage

__all__ = ["MAX_XML_BYTES", "element_to_tree", "localname", "parse_xml"]

MAX_XML_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 40


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def parse_xml(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Parse `data` safely; any problem is a RejectedMessage naming the document ("$")."""
    if len(data) > max_bytes:
        raise RejectedMessage("XML document too large", [Problem("$", "too large", f"{len(data)} bytes")])
    if not data.strip():
        raise RejectedMessage("empty XML document", [Problem("$", "empty input")])
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        line = getattr(exc, "lineno", None)
        reason = f"malformed XML (line {line})" if line else "malformed XML"
        raise RejectedMessage("malformed XML", [Problem("$", reason)]) from exc
    except (ValueError, etree.LxmlError) as exc:
        raise RejectedMessage(
            "unreadable XML", [Problem("$", f"unreadable XML ({type(exc).__name__})")]
        ) from exc
    docinfo = root.getroottree().docinfo
    if getattr(docinfo, "doctype", "") or docinfo.internalDTD is not None:
        raise RejectedMessage("DTD refused", [Problem("$", "DOCTYPE/DTD not allowed")])
    for _ in root.iter(etree.Entity):  # entity references only, filtered in C
        raise RejectedMessage("entities refused", [Problem("$", "entity references not allowed")])
    return root


_LOCALNAMES: dict[str, str] = {}  # tag -> local name (bounded: tags come from untrusted input)
_LOCALNAMES_MAX = 4096


def _local(tag: str) -> str:
    name = _LOCALNAMES.get(tag)
    if name is None:
        name = tag.rsplit("}", 1)[-1]
        if len(_LOCALNAMES) < _LOCALNAMES_MAX:
            _LOCALNAMES[tag] = name
    return name


def localname(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return _local(tag)


def element_to_tree(el: etree._Element, depth: int = 0) -> Any:
    """Element -> plain data, the shape the normalisers read.

    - an element named `liste*` -> list of its converted children (always a list);
    - a leaf with a `code` attribute -> the code (a string);
    - another leaf -> its stripped text ("" when empty);
    - an element with children -> dict by local name (a repeated name -> list).

    Comments, processing instructions and entities are not children (only elements are).
    """
    tag = el.tag
    return _convert(el, isinstance(tag, str) and _local(tag).startswith("liste"), depth)


def _too_deep() -> RejectedMessage:
    return RejectedMessage("XML too deep", [Problem("$", "too deeply nested")])


def _leaf(el: etree._Element) -> str:
    code = el.get("code")
    if code is not None:
        return code
    text = el.text
    return text.strip() if text else ""


_TAGS: dict[str, tuple[str, bool]] = {}  # tag -> (local name, is a `liste*` name); bounded too


def _tag_info(tag: str) -> tuple[str, bool]:
    name = _local(tag)
    info = (name, name.startswith("liste"))
    if len(_TAGS) < _LOCALNAMES_MAX:
        _TAGS[tag] = info
    return info


def _convert(el: etree._Element, liste: bool, depth: int) -> Any:
    # hot path of the sne-xml normaliser: local names are cached per tag, the `code` attribute is
    # read without building the attrib proxy, and leaf children (most elements) are converted inline
    # instead of by a recursive call. Comments, PIs and entities (tag not a str) are counted by
    # len() but are not children.
    if depth > MAX_DEPTH:
        raise _too_deep()
    depth += 1
    tags = _TAGS
    if liste:
        items: list[Any] = []
        for c in el[:]:  # type: ignore[index]  # (a slice is made in C: cheaper than iterating)
            tag = c.tag
            if tag.__class__ is str:
                try:
                    child_liste = tags[tag][1]
                except KeyError:
                    child_liste = _tag_info(tag)[1]
                if child_liste or len(c) or depth > MAX_DEPTH:
                    items.append(_convert(c, child_liste, depth))
                else:
                    value = c.get("code")
                    if value is None:
                        text = c.text
                        value = text.strip() if text else ""
                    items.append(value)
        return items
    if not len(el):
        return _leaf(el)
    out: dict[str, Any] = {}
    for c in el[:]:  # type: ignore[index]
        tag = c.tag
        if tag.__class__ is not str:
            continue
        try:
            key, child_liste = tags[tag]
        except KeyError:
            key, child_liste = _tag_info(tag)
        if child_liste or len(c) or depth > MAX_DEPTH:
            value = _convert(c, child_liste, depth)
        else:
            value = c.get("code")
            if value is None:
                text = c.text
                value = text.strip() if text else ""
        if key in out:
            previous = out[key]
            if type(previous) is _Repeat:
                previous.append(value)
            elif child_liste:
                out[key] = previous + value
            else:
                out[key] = _Repeat([previous, value])
        else:
            out[key] = value
    if not out:  # only comments, PIs or entities inside: a leaf
        return _leaf(el)
    return out


class _Repeat(list[Any]):
    """A list made of a repeated element (kept apart from `liste*` lists)."""

    _repeat = True
