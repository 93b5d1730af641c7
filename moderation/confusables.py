"""Letters from other scripts that look like Latin letters, folded to the Latin letter they imitate.

A curated subset of Unicode's confusables (UTS #39) covering what people
actually use to dodge keyword filters: Cyrillic, Greek, Armenian and Cherokee
look-alikes, Latin small capitals and stroked or barred letters (``ʉ``, ``ꞥ``)
that have no decomposition, and the enclosed/regional-indicator "emoji letters". Fullwidth
and mathematical letters need no entry: NFKC folds them first.
"""

from __future__ import annotations

# Each line: the Latin letter, then every character that imitates it.
_LOOKALIKES = """
a аАαΑɑꭺᴀ⍺ⱥȺ
b ВβΒЬьᏴʙƀ
c сСςᏟᴄȼȻꞓ
d ԁᎠᴅđĐɗ
e еЕεΕᎬᴇҽɇɆ
f ꜰƒ
g ɡɢցԌǥǤ
h һНΗհᎻʜħĦ
i іІιΙӏӀɪɩıɨƗ
j јЈϳᎫᴊɉɈ
k кКκΚᏦᴋꝁꝀ
l ʟłŁǀƚȽ
m мМΜᎷᴍ
n ηΝոɴꞥꞤ
o оОοΟօՕᴏøØɵƟ
p рРρΡᏢᴘᵽⱣꝑꝐ
q ԛԚզꝗꝖꞯ
r ʀгᏒɍɌꞧꞦ
s ѕЅՏᏚꜱꞩꞨ
t тТτΤᎢᴛŧŦ
u υսՍᴜʉɄ
v ѵνᏙᴠ
w ԝԜωᎳᴡ
x хХχΧ
y уУүҮγΥʏɏɎ
z ΖᏃᴢƶƵ
"""

CONFUSABLES: dict[str, str] = {
    imitation: latin
    for line in _LOOKALIKES.split("\n")
    if line
    for latin, imitations in [line.split(" ")]
    for imitation in imitations
}
# Regional indicators (🇳🇺🇩🇪) and negative circled / squared letters (🅝, 🅽) have no NFKC form.
for _base in (0x1F1E6, 0x1F150, 0x1F170):
    CONFUSABLES.update({chr(_base + i): chr(ord("a") + i) for i in range(26)})
# Ligatures NFKC leaves alone.
CONFUSABLES.update({"æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe"})
