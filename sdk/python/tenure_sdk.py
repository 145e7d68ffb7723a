"""The Python conveniences of Tenure's SDK (componentize-py): typed settings
whose errors name the setting, typed errors, and value helpers.

    from tenure_sdk import invalid, read_settings, text_of

    settings = read_settings(pairs, {
        "expiry_time": {"type": "string", "default": "23:59:59"},
        "strict": {"type": "bool", "default": False},
    })

`plugins/build.sh` puts this directory on the plugin's Python path.
"""

from componentize_py_types import Err
from wit_world.imports import types

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def invalid(field: str, reason: str) -> Err:
    """`invalid-input` naming the field and the reason, to raise."""
    return Err(types.PluginError_InvalidInput(types.InvalidInput(field=field, reason=reason)))


def permanent(message: str) -> Err:
    """A `permanent` error, to raise."""
    return Err(types.PluginError_Permanent(message))


def text_of(value):
    """An attribute value as one text (None when absent)."""
    if isinstance(value, types.Value_Text):
        return value.value
    if isinstance(value, (types.Value_Number, types.Value_Flag)):
        return str(value.value)
    if isinstance(value, types.Value_Many):
        return value.value[0] if value.value else None
    return None


def _parse(kind: str, text: str):
    if kind == "string":
        return text
    if kind == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"{text!r} is not true or false")
    raise ValueError(f"unknown setting type {kind!r}")


def read_settings(pairs, spec: dict) -> dict:
    """Reads settings pairs by a spec `{name: {"type", "default", "required", "one_of"}}`
    (types: string, list, int, bool). Unknown, missing and malformed settings raise
    `invalid-input` naming `settings.<name>`."""
    out = {name: rule["default"] for name, rule in spec.items() if "default" in rule}
    for name, raw in pairs:
        rule = spec.get(name)
        if rule is None:
            raise invalid(f"settings.{name}", f"unknown setting; known: {', '.join(spec)}")
        text = raw.strip()
        try:
            value = _parse(rule.get("type", "string"), text)
        except ValueError as e:
            raise invalid(f"settings.{name}", str(e)) from None
        one_of = rule.get("one_of")
        if one_of is not None and value not in one_of:
            raise invalid(f"settings.{name}", f"{text!r} is not one of {', '.join(one_of)}")
        out[name] = value
    for name, rule in spec.items():
        if rule.get("required") and name not in out:
            raise invalid(f"settings.{name}", "required, but not set")
    return out
