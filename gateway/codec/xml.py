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
    for el in root.iter():
        if isinstance(el, etree._Entity):
            raise RejectedMessage("entities refused", [Problem("$", "entity references not allowed")])
    return root


def localname(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def element_to_tree(el: etree._Element, depth: int = 0) -> Any:
    """Element -> plain data, the shape the normalisers read.

    - an element named `liste*` -> list of its converted children (always a list);
    - a leaf with a `code` attribute -> the code (a string);
    - another leaf -> its stripped text ("" when empty);
    - an element with children -> dict by local name (a repeated name -> list).
    """
    if depth > MAX_DEPTH:
        raise RejectedMessage("XML too deep", [Problem("$", "too deeply nested")])
    children = [c for c in el if isinstance(c.tag, str)]
    name = localname(el)
    if name.startswith("liste"):
        return [element_to_tree(c, depth + 1) for c in children]
    if not children:
        if "code" in el.attrib:
            return str(el.attrib["code"])
        return (el.text or "").strip()
    out: dict[str, Any] = {}
    for c in children:
        key = localname(c)
        value = element_to_tree(c, depth + 1)
        if key in out:
            previous = out[key]
            if isinstance(previous, list) and key.startswith("liste"):
                out[key] = previous + value
            elif isinstance(previous, list) and getattr(previous, "_repeat", False):
                previous.append(value)
            else:
                out[key] = _Repeat([previous, value])
        else:
            out[key] = value
    return out


class _Repeat(list[Any]):
    """A list made of a repeated element (kept apart from `liste*` lists)."""

    _repeat = True
