"""gateway.codec.xml.element_to_tree: the shape the normalisers read (the fast converter's contract)."""

from __future__ import annotations

import pytest
from gateway.codec.xml import MAX_DEPTH, element_to_tree, localname, parse_xml
from gateway.errors import RejectedMessage
from lxml import etree


def test_leaves_codes_and_structures() -> None:
    root = parse_xml(
        b'<n:a xmlns:n="urn:x"><n:b> t </n:b><n:c code="X1">ignored</n:c><n:d/><n:e code=""/>'
        b"<n:f><n:g>1</n:g></n:f></n:a>"
    )
    assert element_to_tree(root) == {"b": "t", "c": "X1", "d": "", "e": "", "f": {"g": "1"}}
    assert localname(root) == "a"


def test_repeated_elements_become_one_list_and_liste_elements_are_lists() -> None:
    root = parse_xml(
        b"<a><b>1</b><b>2</b><b>3</b><listeX><i>1</i></listeX><listeX><i>2</i><i code='z'/></listeX>"
        b"<listeY/></a>"
    )
    tree = element_to_tree(root)
    assert tree["b"] == ["1", "2", "3"] and getattr(tree["b"], "_repeat", False)
    assert tree["listeX"] == ["1", "2", "z"] and not getattr(tree["listeX"], "_repeat", False)
    assert tree["listeY"] == []


def test_comments_processing_instructions_and_entities_are_not_children() -> None:
    root = etree.fromstring(b"<a><b>1</b><!-- c --><?pi x?></a>")
    root.append(etree.Entity("e"))
    assert element_to_tree(root) == {"b": "1"}
    only_comment = etree.fromstring(b"<a> x <!-- c --></a>")
    assert element_to_tree(only_comment) == "x"


def test_depth_limit() -> None:
    ok = b"<a>" * MAX_DEPTH + b"x" + b"</a>" * MAX_DEPTH
    assert element_to_tree(parse_xml(ok)) is not None
    deep = b"<a>" * (MAX_DEPTH + 2) + b"x" + b"</a>" * (MAX_DEPTH + 2)
    with pytest.raises(RejectedMessage) as info:
        element_to_tree(parse_xml(deep))
    assert info.value.problems[0].reason == "too deeply nested"


def test_many_distinct_tags_do_not_grow_the_name_cache_without_bound() -> None:
    from gateway.codec import xml  # noqa: PLC0415

    body = b"".join(b"<t%d>v</t%d>" % (i, i) for i in range(xml._LOCALNAMES_MAX + 100))
    tree = element_to_tree(parse_xml(b"<a>" + body + b"</a>"))
    assert len(tree) == xml._LOCALNAMES_MAX + 100
    assert len(xml._LOCALNAMES) <= xml._LOCALNAMES_MAX
    assert len(getattr(xml, "_TAGS", ())) <= xml._LOCALNAMES_MAX


def test_entity_references_are_refused_by_parse_xml() -> None:
    with pytest.raises(RejectedMessage):
        parse_xml(b"<a>&undefined;</a>")


def test_depth_limit_is_exact_for_leaves_converted_inline() -> None:
    # the deepest allowed element sits at depth MAX_DEPTH (the root is at 0), leaf or not
    at_limit = b"<a>" * (MAX_DEPTH + 1) + b"x" + b"</a>" * (MAX_DEPTH + 1)
    assert element_to_tree(parse_xml(at_limit)) is not None
    over = b"<a>" * (MAX_DEPTH + 1) + b"<b code='c'/>" + b"</a>" * (MAX_DEPTH + 1)
    with pytest.raises(RejectedMessage):
        element_to_tree(parse_xml(over))
    over_in_list = b"<a>" * MAX_DEPTH + b"<listeX><i/></listeX>" + b"</a>" * MAX_DEPTH
    with pytest.raises(RejectedMessage):
        element_to_tree(parse_xml(over_in_list))


def test_children_that_are_only_comments_leave_a_leaf_and_liste_merges_keep_order() -> None:
    root = etree.fromstring(
        b"<a><b code='K'><!-- c --></b><c> t <?pi?></c><listeL><i>1</i></listeL><d>2</d>"
        b"<listeL><!-- c --></listeL><listeL><i code='3'/><i>4</i></listeL><d><e>5</e></d></a>"
    )
    tree = element_to_tree(root)
    assert tree == {"b": "K", "c": "t", "listeL": ["1", "3", "4"], "d": ["2", {"e": "5"}]}
    assert list(tree) == ["b", "c", "listeL", "d"]
    assert type(tree["listeL"]) is list and getattr(tree["d"], "_repeat", False)
