"""No data-derived header can add a header line (issue 19, case 5): RFC 2047 encoded-words that decode to a
line break are refused, and every message built is re-parsed as it goes on the wire. A property test over an
adversarial corpus of team names, subjects and addresses: each message has exactly one From and one To, the
expected Cc, and no other header, or it is refused."""

from __future__ import annotations

import base64
import email
from email import policy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costagent_assets.cli import main as cli
from costagent_assets.reporting import RenderedEmail, build_message, team_subject
from costagent_assets.teams.registry import load_registry

ISSUE_NAMES = ["=?UTF-8?Q?B=0D=0ACc:_x@evil.example?=", "=?UTF-8?Q?B=0D=0A=0D=0AVerify:_evil.io?="]
EXPECTED = ["Subject", "From", "To", "Cc", "Date", "Message-ID", "MIME-Version", "Content-Type"]


def b_word(text: str, charset: str = "utf-8") -> str:
    return f"=?{charset}?b?{base64.b64encode(text.encode(charset)).decode()}?="


def q_word(text: str) -> str:
    return "=?UTF-8?Q?" + "".join(f"={b:02X}" if not chr(b).isalnum() else chr(b) for b in text.encode()) + "?="


# What an attacker would put in a team name: header lines, blank lines, each break spelled every way
# (raw, Q- and B-encoded, NEL, Unicode separators), around plain and non-ASCII text.
BREAKS = ["\r\n", "\n", "\r", "\x85", "\u2028", "\u2029", "\x00", "\x0b"]
PAYLOADS = ["Cc: x@evil.example", "Bcc: y@evil.example", "", "Verify: evil.io", "To: z@evil.example",
            "Content-Type: text/html"]
pieces = st.one_of(
    st.sampled_from(ISSUE_NAMES),
    st.builds(lambda b, p: q_word(f"B{b}{p}"), st.sampled_from(BREAKS), st.sampled_from(PAYLOADS)),
    st.builds(lambda b, p: b_word(f"B{b}{p}"), st.sampled_from(BREAKS), st.sampled_from(PAYLOADS)),
    st.builds(lambda b, p: f"B{b}{p}", st.sampled_from(BREAKS), st.sampled_from(PAYLOADS)),
    st.sampled_from(["Payments", "Café Ünïcode", "日本チーム", "=?", "?=", "=?UTF-8?Q?", "a: b", "=?bogus?X?zz?="]),
    st.text(max_size=12),
)
names = st.lists(pieces, min_size=1, max_size=3).map(" ".join)


def parsed(msg) -> email.message.EmailMessage:
    return email.message_from_bytes(msg.as_bytes(), policy=policy.default)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names)
def test_no_team_name_adds_a_header_line(name: str):
    ctx = {"team": {"team_name": name}, "no_data": True, "month_label": "November 2026"}
    try:
        subject = team_subject(ctx)
        msg = build_message(RenderedEmail(subject, "<p>h</p>", "t"), sender="costagent@example.com",
                            to="team@example.com", cc=["lead@example.com"], message_id_domain="example.com")
    except ValueError:
        return  # refused: nothing sent
    wire = parsed(msg)
    assert sorted(wire.keys()) == sorted(EXPECTED)
    assert wire.get_all("From") == ["costagent@example.com"] and wire.get_all("To") == ["team@example.com"]
    assert wire.get_all("Cc") == ["lead@example.com"]
    assert "evil" not in str(wire["Cc"]) + str(wire["To"])
    assert wire.get_body(("plain",)).get_content().strip() == "t"  # the header block did not end early


@settings(max_examples=200, deadline=None)
@given(address=st.builds(lambda n, b, p: f"{n}{b}{p}", st.sampled_from(["a@example.com", q_word("a@example.com")]),
                         st.sampled_from(BREAKS + [""]), st.sampled_from(PAYLOADS)))
def test_no_address_adds_a_header_line(address: str):
    for field in ("to", "sender", "cc"):
        args = {"sender": "costagent@example.com", "to": "team@example.com", "cc": ["lead@example.com"]}
        args[field] = [address] if field == "cc" else address
        try:
            msg = build_message(RenderedEmail("s", "<p>h</p>", "t"), **args)
        except ValueError:
            continue
        wire = parsed(msg)
        assert sorted(wire.keys()) == sorted(EXPECTED)
        assert len(wire.get_all("From")) == 1 and len(wire.get_all("To")) == 1 and len(wire.get_all("Cc")) == 1


@pytest.mark.parametrize("name", ISSUE_NAMES)
def test_the_issue_names_are_refused_by_build_message(name: str):
    with pytest.raises(ValueError, match="decodes to a line break"):
        build_message(RenderedEmail(f"[costagent] {name}: November", "h", "t"), sender="a@example.com",
                      to="b@example.com")


@pytest.mark.parametrize("name", [*ISSUE_NAMES, "=?UTF-8?Q?Caf=C3=A9?=", "Team \u2028 Two", "A\x85B"])
def test_teams_add_and_update_refuse_encoded_words_and_separators(
    isolated: Path, capsys: pytest.CaptureFixture[str], name: str
):
    assert cli.main(["teams", "add", "--account", "012345678901", "--name", "Payments",
                     "--email", "payments@example.com"]) == 0
    registry = isolated / "teams.json"
    before = registry.read_bytes()
    capsys.readouterr()
    assert cli.main(["teams", "update", "012345678901", "--name", name]) == 2
    assert "team_name" in capsys.readouterr().err
    assert registry.read_bytes() == before
    assert cli.main(["teams", "add", "--account", "123456789012", "--name", name,
                     "--email", "x@example.com"]) == 2
    assert registry.read_bytes() == before
    assert [t.team_name for t in load_registry(registry)] == ["Payments"]
