"""Common English words, to tell a word that merely stands next to another from a piece of a split one.

A banned word split by a space into two non-words ("nu de") is joined back,
but two real words that meet ("be head", "bat man", "an al") are left apart;
and a look-alike spelling of a keyword that is a word in its own right
("burn" for "bum") is not indexed. The list is short words and the words that
shipped keywords split into; it errs towards counting something as a word,
since a word wrongly listed only lets one evasion through, while a missing one
could raise a false alarm.
"""

from __future__ import annotations

_WORDS = """
a i o an as at be by do go he if in is it me my no of oh ok on or so to up us we ye yo dis
ad ah am ax eh em ex ha hi ho id la lo ma pa re uh um
all and any are art ask ate bad bag ban bar bat bay bed bee bet big bin bit bow box boy bud bug bun bus but buy
cab can cap car cat cow cry cub cue cup cut dad day den dew did die dig dim dip doe dog dot dry due dug dye
ear eat egg ego elf elk elm end era eve eye fan far fat fee few fig fin fir fit fix fly foe fog for fox fry fun fur
gap gas gel gem get gin god got gum gun gut guy gym had ham has hat hay hen her hey hid him hip his hit hog hop hot
how hub hue hug hut ice icy ill imp ink inn ion ivy jam jar jaw jay jet job jog joy jug key kid kin kit lab lad lap
law lay led leg let lid lie lip lit log lot low mad man map mat may men met mid mix mob mod mom mop mud mug nap net
new nil nip nod nor not now nun nut oak oar oat odd off oil old one orb ore our out owl own pad pal pan pap par pat
paw pay pea peg pen pet pie pig pin pit ply pod pop pot pro pub pun pup put ram ran rap rat raw ray red rib rid rig
rim rip rob rod rot row rub rug rum run rye sad sag sap sat saw say sea see set sew she shy sin sip sir sit six ski
sky sly sob sod son soy spa spy sty sub sum sun tab tag tan tap tar tax tea ten the tie tin tip toe ton too top tow
toy try tub tug two urn use van vat vet via vow war was wax way web wed wet who why wig win wit wok won woo wow yak
yam yes yet you zip zoo
able acre also arch area army aunt away baby back bake ball band bank bare bark barn base bath bead beak beam bean
bear beat been beer bell belt bend best bike bill bird bite blue boat body bold bolt bone book boot born boss both
bowl buck bull burn bush busy cake calf call calm came camp card care cart case cash cast cave cell chin chip city
clay clip club coal coat code coin cold come cook cool cope copy cord core corn cost crab crew crop crow cube cure
curl cute dame dare dark dart dash data date dawn dead deal dear deck deep deer desk dial dice dine dish dive dock
does doll dome done door dose dove down drag draw drop drum duck dull dune dusk dust duty each earn ease east easy
edge else epic even ever exit face fact fade fair fall fame farm fast fate fawn fear feed feel feet fell felt fern
file fill film find fine fire firm fish fist five flag flat flaw fled flew flip flow foam fold folk fond food fool
foot ford fork form fort four fowl free frog from fuel full fund fuse gain gale game gate gave gaze gear gift girl
give glad glow glue goal goat gold golf gone good gown grab gray grew grey grid grim grin grip grow gulf hail hair
half hall halo hand hang hard harm harp hate have hawk head heal heap hear heat held hell helm help herb herd here
hero hide high hike hill hint hold hole holy home hood hook hope horn hose host hour huge hull hung hunt hurt idea
idle inch into iron isle item jade jail jazz jean jest joke jump jury just keen keep kept kick kill kind king kiss
kite knee knew knit knob knot know lace lack lady laid lake lamb lamp land lane last late lava lawn lazy lead leaf
leak lean leap left lend lens less liar life lift like lily lime line link lion list live load loaf loan lock loft
lone long look loom loop lord lose loss lost loud love luck lung lure lush made maid mail main make male mall malt
many mark mask mass mast mate maze meal mean meat meet melt memo menu mere mesh mess mice mild mile milk mill mind
mine mint miss mist moat mode mole monk mood moon moor more moss most moth move much mule muse must myth nail name
navy near neat neck need nest news next nice nine node none noon norm nose note oath obey odds once only onto open
oral oven over pace pack page paid pail pain pair pale palm park part pass past path peak pear peel peer pest pick
pier pile pine pink pipe plan play plot plow plug plum poem poet pole poll pond pony pool poor pope pork port pose
post pour pray prey prop pull pump pure push quit race rack raft rage raid rail rain rake ramp rank rare rate read
real rear reed reef rely rent rest rice rich ride ring riot rise risk road roam roar robe rock rode role roll roof
room root rope rose ruby rude ruin rule rush rust sack safe sage said sail sake sale salt same sand sang sank save
scan seal seat seed seek seem seen self sell send sent shed ship shoe shop shot show shut sick side sigh sign silk
sing sink site size skin skip slab slam slap sled slid slim slip slot slow smog snap snow soap soar sock sofa soft
soil sold sole some song soon sore sort soul soup sour span spin spot star stay stem step stew stir stop stub such
suit sung sunk sure surf swan swap swim tail take tale talk tall tame tank tape task team tear tell tend tent term
test text than that them then they thin this thus tide tidy tied tier tile till time tiny tire toad toil told toll
tomb tone took tool tore torn tour town trap tray tree trim trio trip true tube tuck tune turn twin type ugly unit
upon urge used user vain vale vase vast veil vein very vest view vine void vote wade wage wait wake walk wall wand
want ward warm warn warp wary wash wave weak wear weed week well went were west what when whip wide wife wild will
wind wine wing wire wise wish with woke wolf wood wool word wore work worm worn wrap yard yarn year yell yoga your
zero zone
bucks butt chap cheek cider crown dwarf field flame glass grass heart horse house light magic metal night ocean
paint plant power queen river robot shell spider stone storm super sword table tiger tower trail trails train
warts water witch world
"""

COMMON_WORDS: frozenset[str] = frozenset(_WORDS.split())
