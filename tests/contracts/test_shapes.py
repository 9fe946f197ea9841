"""A body's shape, and the name the receiver lands for it (landing format 3's ``body_shape``)."""

from __future__ import annotations

from collections import OrderedDict

from pipeline.contracts.schema import shape_of
from pipeline.receiver.landing_format import body_shape, parse_body


def test_a_shape_keeps_keys_json_types_and_distinct_array_items() -> None:
    value = parse_body(
        b'{"s":"x","i":-3,"f":1.0,"b":true,"n":null,"o":{},'
        b'"a":[{"id":1},{"id":2},{"id":"3"},true,1,[]]}'
    )
    assert shape_of(value) == {
        "s": "string",
        "i": "integer",
        "f": "number",
        "b": "boolean",
        "n": "null",
        "o": {},
        "a": [{"id": "integer"}, {"id": "string"}, "boolean", "integer", []],
    }


def test_subclasses_of_the_json_types_have_the_same_shape() -> None:
    value = OrderedDict(a=True, b=[OrderedDict(c=1.5)])
    assert shape_of(value) == {"a": "boolean", "b": [{"c": "number"}]}


def test_equal_shapes_share_a_name_and_any_difference_changes_it() -> None:
    def name(text: bytes) -> str | None:
        return body_shape(parse_body(text))

    base = name(b'{"a":1,"b":[{"c":"x"}]}')
    assert base == name(b'{"a":99,"b":[{"c":"y"},{"c":"z"}]}')
    others = [
        b'{"a":1.5,"b":[{"c":"x"}]}',  # integer -> number
        b'{"a":true,"b":[{"c":"x"}]}',  # integer -> boolean
        b'{"a":1,"b":[{"c":"x"},{"d":"x"}]}',  # a second item shape
        b'{"a":1,"b":[{"c":"x"}],"e":null}',  # an extra key
        b'{"a":1}',  # a missing key
    ]
    names = {name(text) for text in others}
    assert len(names) == len(others) and base not in names and None not in names
    assert len(name(b'{"a":1}')) == 16
