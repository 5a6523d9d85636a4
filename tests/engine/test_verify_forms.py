"""verify's cross-version normalisation of deparsed definitions (pure logic)."""

from migrator.steps.verify import cross_version_form


def test_cross_version_form_folds_deparse_differences():
    pg15 = "CHECK (((event)::text = ANY ((ARRAY['on'::character varying, 'off'::character varying])::text[])))"
    pg17 = "CHECK (((event)::text = ANY (ARRAY[('on'::character varying)::text, ('off'::character varying)::text])))"
    assert cross_version_form(pg15) == cross_version_form(pg17)
    assert cross_version_form(pg15) != cross_version_form(pg15.replace("'off'", "'of'"))
    assert cross_version_form("SELECT t.a FROM t", qualifiers=True) == cross_version_form("SELECT a FROM t")
