"""Build specs, their order, dates, requirement lines and commit contents (pure functions)."""
from __future__ import annotations

import datetime as dt

import pytest

from mhabench.track.builds import (FIRST_DATE, NIGHTLY_INDEX, UNKNOWN_STEP, Build, commit_dates,
                             local_build, merged, ordered, parse_spec)
from mhabench.measure.config import ConfigError


def _day(y, m, d):
    return int(dt.datetime(y, m, d, tzinfo=dt.timezone.utc).timestamp())


def test_release_spec_forms():
    for spec in ("2.13.0", "torch==2.13.0", " torch == 2.13.0 "):
        b = parse_spec(spec)
        assert (b.version, b.kind, b.date, b.tag) == ("2.13.0", "release", None, "torch-2.13.0")
        assert b.requirements() == ["torch==2.13.0"]
    b = parse_spec("2.14.1@2026-05-02")
    assert b.date == _day(2026, 5, 2)
    assert parse_spec("2.15.0rc1").requirements() == ["--pre", "torch==2.15.0rc1"]


def test_nightly_spec_gets_pre_index_and_its_own_date():
    b = parse_spec("2.15.0.dev20260101")
    assert (b.kind, b.date) == ("nightly", _day(2026, 1, 1))
    assert b.requirements() == [f"--index-url {NIGHTLY_INDEX}", "--pre",
                                "torch==2.15.0.dev20260101"]
    assert "torch==2.15.0.dev20260101" in b.files()["requirements.txt"]
    cuda = parse_spec("2.15.0.dev20260101", "https://download.pytorch.org/whl/nightly/cu126")
    assert cuda.requirements()[0].endswith("/cu126")


@pytest.mark.parametrize("spec, named", [
    ("2.13.x", "'2.13.x'"), ("torch>=2.1", "'torch>=2.1'"), ("", "no version"),
    ("2.13.0@2026-13-01", "'2026-13-01'"), ("2.15.0.dev1", "devYYYYMMDD"),
    ("2.15.0a0+git1234", "--existing"),
])
def test_bad_specs_raise_one_line_naming_the_value(spec, named):
    with pytest.raises(ConfigError) as info:
        parse_spec(spec)
    assert named in str(info.value) and "\n" not in str(info.value)


def test_order_is_pep440_nightly_then_source_build_then_release():
    local = local_build("2.15.0a0+git1234abc", "1234abc" * 5, "/usr/bin/python3")
    got = ordered([parse_spec("2.15.0"), local, parse_spec("2.15.0.dev20260101"),
                   parse_spec("2.14.1"), parse_spec("2.13.0")])
    assert [b.version for b in got] == ["2.13.0", "2.14.1", "2.15.0.dev20260101",
                                       "2.15.0a0+git1234abc", "2.15.0"]
    assert local.requirements() == [] and "requirements.txt" not in local.files()
    assert "git 1234abc" in local.message() and local.git_version in local.files()["build.json"]


def test_same_version_twice_differently_is_an_error_identical_is_not():
    assert len(ordered([parse_spec("2.13.0"), parse_spec("2.13.0")])) == 1
    with pytest.raises(ConfigError, match="2.13.0"):
        ordered([parse_spec("2.13.0"), parse_spec("2.13.0@2026-01-01")])
    assert [b.date for b in merged([parse_spec("2.13.0")], [parse_spec("2.13.0@2026-01-01")])] \
        == [_day(2026, 1, 1)]  # a later call may give a date: it replaces the build


def test_commit_dates_never_go_backwards():
    builds = [Build("2.12.0"), Build("2.13.0"), Build("2.14.0", date=_day(2021, 1, 1)),
              Build("2.14.1", date=_day(2020, 6, 1))]
    dates = commit_dates(builds)
    assert dates[:2] == [FIRST_DATE, FIRST_DATE + UNKNOWN_STEP]
    assert dates[2] == _day(2021, 1, 1) and dates[3] == dates[2] + 1


def test_files_are_deterministic_and_plain_builds_have_no_variant_keys():
    a, b = parse_spec("2.13.0"), parse_spec("torch==2.13.0")
    assert a.files() == b.files() and "variant" not in a.files()["build.json"]
    v = Build("2.13.0", variant="slowed", extra=["/w/p.whl"])
    assert v.tag == "torch-2.13.0-slowed" and v.requirements()[-1] == "/w/p.whl"
    assert Build(**{**v.manifest()}) == v  # round-trips through builds.json


# --- release dates -------------------------------------------------------------------------------
def test_an_unknown_date_says_so_in_the_commit_message():
    assert "date: unknown" in parse_spec("2.13.0").message()
    assert "date: 2026-05-02" in parse_spec("2.13.0@2026-05-02").message()


def test_dated_uses_the_lookup_for_releases_only():
    from mhabench.track.builds import dated
    day = _day(2025, 3, 4)
    assert dated(parse_spec("2.13.0"), lambda v: day).date == day
    assert dated(parse_spec("2.13.0"), lambda v: None).date is None
    given = parse_spec("2.13.0@2026-01-01")
    assert dated(given, lambda v: day) == given  # a given date wins
    nightly = parse_spec("2.15.0.dev20260101")
    assert dated(nightly, lambda v: day) == nightly


def test_release_date_reads_the_index_upload_times_and_caches_them(tmp_path, monkeypatch):
    import io
    import json as _json
    import urllib.request
    from mhabench.track.builds import release_date
    monkeypatch.setenv("MHABENCH_CACHE_DIR", str(tmp_path))
    page = {"files": [{"filename": "torch-2.13.0-cp311-none-any.whl",
                       "upload-time": "2026-03-05T10:00:00Z"},
                      {"filename": "torch-2.13.0-cp310-none-any.whl",
                       "upload-time": "2026-03-04T23:00:00Z"},
                      {"filename": "torch-2.13.1-cp311-none-any.whl",
                       "upload-time": "2026-01-01T00:00:00Z"}]}
    asked = []

    def fake(req, timeout):
        asked.append(req.full_url)
        return io.BytesIO(_json.dumps(page).encode())
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    assert release_date("2.13.0") == _day(2026, 3, 4)  # the first upload
    assert release_date("2.13.0") == _day(2026, 3, 4) and len(asked) == 1  # cached
    assert release_date("2.99.0") is None  # no such files: unknown

    def offline(req, timeout):
        raise OSError("no network")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert release_date("2.14.0") is None
