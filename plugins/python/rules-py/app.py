"""rules-py: a Tenure rules plugin written in Python (componentize-py).

The rule set is JSON:

    {"destinations": {"scim": {
        "department_groups": {"Engineering": ["eng", "github"]},
        "location_containers": {"Berlin": "ou=EU"},
        "default_groups": ["all-staff"],
        "default_container": "ou=People",
        "contractor_expiry": true}}}

It shows that the `rules-plugin` world works from Python: typed records in,
typed records out, host logging, and typed errors instead of traps. Settings
(read with the SDK's `read_settings`, sdk/python/tenure_sdk.py):
`expiry_time` (the time of day a contractor's access ends, default 23:59:59).
"""

import json

import wit_world
from tenure_sdk import invalid as _invalid
from tenure_sdk import read_settings
from wit_world.exports import rules
from wit_world.imports import log, types

_RULES: dict = {}
_SETTINGS: dict = {}
_SPEC = {"expiry_time": {"type": "string", "default": "23:59:59"}}


class Rules(wit_world.exports.Rules):
    def configure(self, rule_set: str, settings) -> None:
        global _RULES, _SETTINGS
        _SETTINGS = read_settings(settings, _SPEC)
        try:
            doc = json.loads(rule_set or "{}")
        except json.JSONDecodeError as e:
            raise _invalid("rule-set", f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
        destinations = doc.get("destinations")
        if not isinstance(destinations, dict):
            raise _invalid("rule-set.destinations", "must be an object of destination name -> rules")
        _RULES = destinations
        log.log(log.Level.INFO, f"rules-py loaded {len(destinations)} destination(s)")

    def evaluate(self, person: types.Person, context: rules.Context) -> rules.Evaluation:
        accounts = []
        trace = []
        wanted = context.destinations or sorted(_RULES)
        for name in wanted:
            spec = _RULES.get(name)
            if spec is None:
                raise _invalid("context.destinations", f"no rules for destination {name!r}")
            groups = []
            dept = person.department or ""
            dept_groups = spec.get("department_groups", {}).get(dept)
            trace.append(rules.TraceEntry(
                destination=name,
                rule="department_groups",
                matched=dept_groups is not None,
                reason=f"department {dept!r} {'has' if dept_groups else 'has no'} group mapping",
                inputs=[("department", types.Value_Text(dept) if dept else types.Value_Absent())],
                contributed=[f"group:{g}" for g in dept_groups or []],
            ))
            if context.trace == rules.TraceLevel.NONE or (context.trace == rules.TraceLevel.MATCHED and dept_groups is None):
                trace.pop()
            groups.extend(dept_groups or [])
            if not groups:
                groups.extend(spec.get("default_groups", []))
            container = spec.get("location_containers", {}).get(person.location or "")
            if container is None:
                container = spec.get("default_container")
            expires = None
            if spec.get("contractor_expiry") and person.employment_type == types.EmploymentType.CONTRACTOR:
                if not person.end_date:
                    raise _invalid("end_date", "a contractor needs an end date")
                expires = f"{person.end_date}T{_SETTINGS['expiry_time']}Z"
            display = " ".join(p for p in [person.preferred_name or person.given_name, person.family_name] if p)
            accounts.append(types.DesiredAccount(
                destination=name,
                attributes=[types.Attribute(name="displayName", value=types.Value_Text(display))],
                container=container,
                groups=groups,
                licenses=[],
                app_assignments=[],
                enabled=person.status != types.PersonStatus.TERMINATED,
                expires_at=expires,
                tickets=[],
            ))
        return rules.Evaluation(accounts=accounts, trace=trace)
