"""YAML as the project's files hold it: shipped files read fast, authored content written as
authors write it. No Django here: the bank readers use it before the apps are ready."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

# libyaml's parser reads the shipped files (the bank, the problems, the design prompts) about
# three times faster than the pure-Python one, to the same data; the pure one where it is absent.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_load(text: str) -> Any:
    """A YAML document's data; safe (plain data only, never Python objects)."""
    return yaml.load(text, Loader=_SafeLoader)


class _TextDumper(yaml.SafeDumper):
    pass


def _text_representer(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_TextDumper.add_representer(str, _text_representer)


def yaml_dump(document: Mapping[str, Any]) -> str:
    """YAML as authors write it: keys in their order, multi-line text (code too) as blocks."""
    return yaml.dump(document, Dumper=_TextDumper, sort_keys=False, allow_unicode=True, width=100)
