"""The explorer's selection, pure: URL parameters, SQL with parameters, guppy filters."""

from __future__ import annotations

import duckdb

from dashboards.selection import (
    NO_DATA,
    FacetSelection,
    Range,
    Selection,
    from_guppy,
    parse_params,
    parse_range,
    pattern_regex,
    to_guppy,
    to_params,
    where_sql,
)

INJECTIONS = ["x' or '1'='1", "'); drop table marts.imaging_studies; --", "\" or 1=1 --", "a\\' union select 1"]


def test_url_parameters_round_trip() -> None:
    params = {"sex": ["Male", "Female"], "modalities": ["CR", NO_DATA], "age_at_imaging": ["40..60"],
              "tag_path_pattern": ["(0018,0060)"], "value_number": ["80..120"]}
    selection, ignored = parse_params(params)
    assert not ignored
    assert selection.facets["modalities"] == FacetSelection(values=("CR",), no_data=True)
    assert selection.facets["age_at_imaging"].range == Range(40, 60)
    assert to_params(selection) == params
    assert parse_params(to_params(selection))[0] == selection


def test_unknown_parameters_and_bad_ranges_are_reported_not_applied() -> None:
    selection, ignored = parse_params({"tab": ["series"], "sex": ["Male"], "slice_thickness": ["thin"]})
    assert selection.entity == "series" and not selection.facets
    assert any("sex" in note for note in ignored) and any("lo..hi" in note for note in ignored)


def test_ranges() -> None:
    assert parse_range("-5..2.5") == Range(-5, 2.5)
    assert parse_range("60..40") == Range(40, 60)
    assert parse_range("..3") == Range(None, 3)
    assert parse_range("nan..1") is None and parse_range("..") is None and parse_range("5") is None


def test_user_values_only_travel_as_parameters() -> None:
    selection, _ = parse_params({"sex": INJECTIONS, "modalities": INJECTIONS, "tag_path_pattern": INJECTIONS[:1],
                                 "value_text": INJECTIONS, "age_at_imaging": ["1..2"]})
    where, params = where_sql(selection)
    for text in INJECTIONS:
        assert text not in where
    assert INJECTIONS in params
    con = duckdb.connect()
    con.execute("create table m (sex varchar, modalities varchar[], age_at_imaging double, study_uid varchar)")
    con.execute("create schema raw; create table raw.dicom_elements (file_id varchar, tag_path varchar, "
                "value_text varchar, value_number double); create table raw.dicom_instances "
                "(file_id varchar, study_instance_uid varchar)")
    con.execute("insert into m values ('x'' or ''1''=''1', ['CR'], 1.5, 'u')")
    assert con.execute(f"select count(*) from m where {where}", params).fetchone() == (0,)  # the header facet
    no_header = Selection(entity="studies", facets=selection.facets)
    where, params = where_sql(no_header)
    assert con.execute(f"select count(*) from m where {where}", params).fetchone() == (0,)
    where, params = where_sql(Selection(entity="studies", facets={"sex": FacetSelection(values=(INJECTIONS[0],))}))
    assert con.execute(f"select count(*) from m where {where}", params).fetchone() == (1,)  # matched as a value


def test_a_facet_is_left_out_of_its_own_counts() -> None:
    selection, _ = parse_params({"sex": ["Male"], "race": ["White"]})
    where, params = where_sql(selection, exclude="sex")
    assert "m.sex" not in where and "m.race" in where and params == [["White"]]
    assert where_sql(Selection()) == ("true", [])


def test_list_columns_match_any_element_and_no_data_matches_missing() -> None:
    con = duckdb.connect()
    con.execute("create table m as select * from (values ('a', ['CR', 'DX']), ('b', []), ('c', null), "
                "('d', ['CT'])) t(study_uid, modalities)")
    for values, expected in ((["DX"], ["a"]), ([NO_DATA], ["b", "c"]), (["CT", NO_DATA], ["b", "c", "d"])):
        where, params = where_sql(parse_params({"modalities": values})[0])
        rows = con.execute(f"select study_uid from m where {where} order by 1", params).fetchall()
        assert [r[0] for r in rows] == expected


def test_tag_path_patterns_match_any_item() -> None:
    assert pattern_regex("(0012,0064)__*__(0008,0100)") == r"^\(0012,0064\)__[0-9]+__\(0008,0100\)$"
    con = duckdb.connect()
    regex = pattern_regex("(0012,0064)__*__(0008,0100)")
    for path, expected in (("(0012,0064)__3__(0008,0100)", True), ("(0012,0064)__0__(0040,A730)__1__(0008,0100)",
                                                                  False)):
        assert con.execute("select regexp_full_match(?, ?)", [path, regex]).fetchone() == (expected,)


def test_guppy_filters_out_and_back() -> None:
    selection, _ = parse_params({"sex": ["Male"], "modalities": ["CR", "DX"], "midrc_mrale_score": ["10.."],
                                 "manufacturers": ["GE"], "in_dicom": ["true"]})
    form = to_guppy(selection)
    assert form.index == "imaging_study"
    assert {"IN": {"study_modality": ["CR", "DX"]}} in form.filter["AND"]
    assert {"nested": {"path": "imaging_study_annotations", ">=": {"midrc_mRALE_score": 10}}} in form.filter["AND"]
    assert form.dicom_conditions == ["manufacturer in ('GE')"]
    assert form.left_out == ["Headers held"]
    back = from_guppy("studies", form.filter)
    assert back is not None and back.facets == {k: v for k, v in selection.facets.items()
                                                if k not in ("manufacturers", "in_dicom")}
    assert from_guppy("studies", {"OR": [{"=": {"sex": "Male"}}]}) is None
    assert "''" in to_guppy(parse_params({"manufacturers": ["O'Brien"]})[0]).dicom_conditions[0]
