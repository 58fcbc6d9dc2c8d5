import logging

import pytest

from tfseq2seq.data.tsv import DataError, read_tsv

# ---------------------------------------------------------------- read_tsv

BAD_TSV = (b"\xef\xbb\xbfhello\tHH AH L OW\r\n"   # 1 BOM + CRLF: fine
           b"no tab here\n"                       # 2
           b"a\tb\tc\n"                           # 3
           b"\n"                                  # 4 blank: ignored
           b" \tAH\n"                             # 5 empty source
           b"word\t  \n"                          # 6 empty target
           b"caf\xe9\tK AE F\n"                   # 7 latin-1, not UTF-8
           b"\xe6\x97\xa9\xe4\xb8\x8a\xe5\xa5\xbd\tGood morning!")  # 8 no final newline


def test_read_tsv_reports_malformed_lines(tmp_path, caplog):
    path = tmp_path / "data.tsv"
    path.write_bytes(BAD_TSV)
    with caplog.at_level(logging.WARNING):
        report = read_tsv(path)
    assert report.pairs == [("hello", "HH AH L OW"), ("早上好", "Good morning!")]
    assert report.skipped == 5
    assert [p.split(": ", 1)[0] for p in report.problems] == [f"{path}:{n}" for n in (2, 3, 5, 6, 7)]
    assert "no tab" in report.problems[0] and "2 tabs" in report.problems[1]
    assert "empty source" in report.problems[2] and "empty target" in report.problems[3]
    assert "UTF-8" in report.problems[4]
    assert f"{path}:3" in caplog.text


def test_read_tsv_strict_raises_with_location(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes(BAD_TSV)
    with pytest.raises(DataError, match=f"{path}:2: no tab"):
        read_tsv(path, strict=True)


# ---------------------------------------------------------------- make_dataset
