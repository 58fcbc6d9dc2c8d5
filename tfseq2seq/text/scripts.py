"""Character classes of writing systems, shared by the corpus readers and the plots."""

import re

# Chinese, Japanese and Korean ideographs, kana, bopomofo, CJK punctuation and full-width
# forms: what CC-CEDICT glosses must not contain, and what matplotlib's default font
# cannot draw.
CJK = re.compile("[\u2e80-\u2fdf\u3000-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff"
                 "\uf900-\ufaff\uff00-\uffef\U00020000-\U0003ffff]")
