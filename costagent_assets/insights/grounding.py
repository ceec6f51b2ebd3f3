"""The grounding check: every number, account id and AWS service name in a reply must be in its pack, and so
must every link, e-mail address, phone number and instruction to the reader (a reply that says "email your
root password to ..." or links somewhere is a phishing text in a trusted email, whatever its figures).

``PackIndex`` holds what a pack vouches for; ``ungrounded`` lists what a text cites beyond it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# AWS service names and their usual short forms: a reply naming one must find it in the pack.
_AWS_TERMS = {
    "EC2": "Elastic Compute Cloud", "S3": "Simple Storage Service", "RDS": "Relational Database Service",
    "SQS": "Simple Queue Service", "SNS": "Simple Notification Service", "ECS": "Elastic Container Service",
    "EKS": "Elastic Kubernetes Service", "KMS": "Key Management Service", "VPC": "Virtual Private Cloud",
    "Lambda": None, "CloudWatch": None, "DynamoDB": None, "ElastiCache": None, "OpenSearch": None,
    "Route 53": None, "Secrets Manager": None, "CloudFront": None, "Kinesis": None, "Glue": None,
    "Athena": None, "SageMaker": None, "Backup": None, "Redshift": None, "Aurora": None, "Fargate": None,
    "Bedrock": None, "EBS": "Elastic Block Store", "EFS": "Elastic File System", "EMR": "Elastic MapReduce",
    "NAT Gateway": None, "Data Transfer": None, "Elastic Load Balancing": None, "ELB": "Elastic Load Balancing",
    "Cost Explorer": None, "Savings Plans": None,
}
_ACCOUNT_ID = re.compile(r"(?<!\d)(\d{12}|\d{4}-\d{4}-\d{4})(?!\d)")
_NUMBER = re.compile(
    r"(?<![\w.])(?P<dollar>\$\s?)?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?:\s?(?P<scale>[kK]\b|[mM]\b|million\b|thousand\b))?(?P<pct>\s?%|\s?percent\b)?"
)
# Counts ("3 services", "2 alerts") are not figures: bare integers up to this need no source.
_FREE_INTEGER = 12
# Keys whose text is untrusted input (names): its digits are not figures the pack vouches for.
_UNTRUSTED_KEYS = {"team_name", "service", "top_driver", "action",
                   # savings findings: ids and names the reply may quote as they are (i-0abc, m5.2xlarge)
                   "resource_id", "name", "region", "size", "suggested", "usage_type"}


# Contact details and links: a reply may repeat one only when the pack holds it.
_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>\"')\]]+")
_EMAIL = re.compile(r"(?i)(?<![\w.+-])[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
# A bare domain such as evil.io or finops-help.example.com (common top-level domains only, so that an
# instance type like m5.large is not read as one).
_DOMAIN = re.compile(
    r"(?i)(?<![\w@.-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"(?:com|net|org|io|co|ai|app|dev|info|biz|xyz|me|us|uk|de|fr|ru|cn|in|example|link|click|online|site|top|"
    r"live|support|help|cloud|tech|email|page|sh|ly|gl|tk|ml|ga|cf|gq|zip|mov)(?![\w-])"
)
_PHONE = re.compile(
    r"(?<![\w-])(?:\+\d[\d\s().-]{6,}\d|\(\d{2,4}\)\s?\d[\d\s.-]{4,}\d|\d{3}[-.\s]\d{3}[-.\s]\d{4})(?![\w-])"
)
# Words that ask the reader to do something no cost explanation asks for: hand over a secret, follow a link,
# sign in, pay. Allowed only when the pack's own text uses them (a savings action may say "delete").
_INSTRUCTION = re.compile(
    r"(?i)\b(?:passwords?|passwd|passcodes?|credentials?|secret keys?|access keys?|api keys?|private keys?|"
    r"mfa|one-time code|root (?:account|user|login)|click|log ?in|sign ?in|verify your|confirm your|"
    r"send|e-?mail (?:your|us|it|them|the)|reply with|call us|contact us|wire|gift cards?|"
    r"bitcoin|crypto|payment details|bank details)\b"
)


@dataclass
class PackIndex:
    """What a reply may cite: the pack's numbers (by kind), account ids and service names."""

    usd: list[float] = field(default_factory=list)
    pct: list[float] = field(default_factory=list)
    other: list[float] = field(default_factory=list)
    account_ids: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)  # service and team names, longest first
    text: str = ""  # every string of the pack, lower-cased: links, addresses and words it vouches for

    @classmethod
    def of(cls, pack: dict) -> PackIndex:
        """Index every value of ``pack``."""
        index, strings = cls(), []

        def walk(value, key: str = "") -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(v, k)
            elif isinstance(value, list):
                for v in value:
                    walk(v, key)
            elif isinstance(value, bool) or value is None:
                return
            elif isinstance(value, (int, float)):
                bucket = index.usd if key.endswith("usd") else index.pct if key.endswith("pct") else index.other
                bucket.append(abs(float(value)))
            elif isinstance(value, str):
                strings.append(value.lower())
                if key == "account_id":
                    index.account_ids.add(value)
                elif key in _UNTRUSTED_KEYS:
                    index.names.append(value)
                else:  # our own text (dates, labels, method): its numbers count
                    index.other.extend(float(n) for n in re.findall(r"\d+(?:\.\d+)?", value))

        walk(pack)
        index.names = sorted({n for n in index.names if n}, key=len, reverse=True)
        index.text = "\n".join(strings)
        return index

    def allows_number(self, value: float, tolerance: float, kind: str) -> bool:
        """Whether ``value`` (within ``tolerance``) is a figure of the pack of that kind."""
        pools = {"usd": self.usd, "pct": self.pct}.get(kind) or (self.usd + self.pct + self.other)
        if kind == "usd":
            pools = self.usd + self.other  # a budget or method figure may be read as dollars
        return any(abs(value - x) <= tolerance for x in pools)


def _tolerance(digits: str, frac: str | None, scale: float) -> float:
    """Half a unit of the last digit written, as a figure rounded to it; at most 1% of the value."""
    if frac:
        return 0.5 * 10 ** -(len(frac) - 1) * scale + 1e-9
    zeros = len(digits) - len(digits.rstrip("0")) if digits.strip("0") else 0
    value = float(digits) * scale
    return max(0.5 * scale, min(0.5 * 10**zeros * scale, 0.01 * value)) + 1e-9


def ungrounded(text: str, index: PackIndex) -> list[str]:
    """What in ``text`` the pack does not vouch for: numbers, account ids, AWS service names. Empty: grounded."""
    problems = _contact_and_instruction_problems(text, index)
    masked = text
    # Names from the pack (services, the team) are masked first, so "Amazon Route 53" is not the number 53.
    for name in index.names:
        masked = re.sub(re.escape(name), " ", masked, flags=re.IGNORECASE)
    for term, long_form in sorted(_AWS_TERMS.items(), key=lambda kv: -len(kv[0])):
        pattern = re.compile(rf"(?<![\w-]){re.escape(term)}(?![\w-])", re.IGNORECASE)
        if not pattern.search(masked):
            continue
        known = any(term.lower() in n.lower() or (long_form and long_form.lower() in n.lower()) for n in index.names)
        if not known:
            problems.append(f"service {term!r} is not in the evidence")
        masked = pattern.sub(" ", masked)
    for match in _ACCOUNT_ID.finditer(masked):
        if match.group(1).replace("-", "") not in index.account_ids:
            problems.append(f"account id {match.group(1)} is not in the evidence")
    masked = _ACCOUNT_ID.sub(" ", masked)
    for m in _NUMBER.finditer(masked):
        scale_word = (m.group("scale") or "").lower()
        scale = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}.get(scale_word, 1.0)
        digits = m.group("int").replace(",", "")
        value = float(digits + (m.group("frac") or "")) * scale
        kind = "usd" if m.group("dollar") else "pct" if m.group("pct") else "any"
        if kind == "any" and not m.group("frac") and scale == 1.0 and value <= _FREE_INTEGER:
            continue
        if not index.allows_number(value, _tolerance(digits, m.group("frac"), scale), kind):
            problems.append(f"figure {m.group(0).strip()!r} is not in the evidence")
    return problems


def _contact_and_instruction_problems(text: str, index: PackIndex) -> list[str]:
    """Links, e-mail addresses, phone numbers and instructions to the reader that the pack does not hold."""
    problems, rest = [], text
    for kind, pattern in (("link", _URL), ("e-mail address", _EMAIL), ("link", _DOMAIN), ("phone number", _PHONE)):
        for match in pattern.finditer(rest):
            if match.group(0).lower().rstrip(".,;:") not in index.text:
                problems.append(f"{kind} {match.group(0)!r} is not in the evidence")
        rest = pattern.sub(" ", rest)  # a URL's host is not reported again as a domain
    words = {m.group(0).lower() for m in _INSTRUCTION.finditer(text)}
    for word in sorted(words):
        if not re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", index.text):
            problems.append(f"instruction {word!r} to the reader is not in the evidence")
    return problems
