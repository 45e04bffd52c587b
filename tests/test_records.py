from dataclasses import dataclass, field

from optimum_sinkprune.records import DictRecord


@dataclass
class _Inner(DictRecord):
    value: float = 0.5


@dataclass
class _Outer(DictRecord):
    name: str
    inner: _Inner = field(default_factory=_Inner)
    items: list = field(default_factory=list)


def test_to_dict_is_the_fields_with_nested_records_as_dicts():
    out = _Outer("a", items=[1, 2]).to_dict()
    assert out == {"name": "a", "inner": {"value": 0.5}, "items": [1, 2]}
    out["items"].append(3)  # a copy: editing the dict leaves the record alone
    assert _Outer("a", items=[1, 2]).items == [1, 2]
