from __future__ import annotations

import pytest

from specializer.templates import TemplateError, cint, render


def write(tmp_path, text):
    p = tmp_path / "t.c.in"
    p.write_text(text)
    return p


def test_substitution_loops_and_conditions(tmp_path):
    p = write(tmp_path, """static int ${FN}(void) {
$for i in range(N):
    int a${i} = ${i * 2};
$endfor
$if N > 2:
    return a2;
$elif N == 2:
    return a1;
$else:
    return 0;
$endif
}
""")
    out = render(p, {"FN": "f", "N": 3})
    assert "int a0 = 0;" in out and "int a2 = 4;" in out and "return a2;" in out
    assert "return a1" not in out and "$" not in out
    assert "return a1;" in render(p, {"FN": "f", "N": 2})
    assert "return 0;" in render(p, {"FN": "f", "N": 0})


def test_assert_and_errors_name_the_line(tmp_path):
    p = write(tmp_path, "$assert K in (1, 3), 'K must be 1 or 3'\nint x = ${K};\n")
    assert "int x = 3;" in render(p, {"K": 3})
    with pytest.raises(TemplateError, match=r"t.c.in:1: template assertion failed K must be 1 or 3"):
        render(p, {"K": 2})
    bad = write(tmp_path, "$for i in range(3):\nx\n")
    with pytest.raises(TemplateError, match="unclosed"):
        render(bad, {})


def test_comments_are_dropped_and_dollar_brace_lines_kept(tmp_path):
    p = write(tmp_path, "$# a comment\n${FN}(x);\n")
    assert render(p, {"FN": "g"}) == "g(x);\n"


def test_cint_handles_int32_min():
    assert cint(-(1 << 31)) == "(-2147483647 - 1)"
    assert cint(5) == "5"
