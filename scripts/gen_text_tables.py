#!/usr/bin/env python3
"""Generates src/text_tables.h: the Unicode folding tables and stop word lists of src/text.c.

Run from the repository root: python3 scripts/gen_text_tables.py > src/text_tables.h
The output is committed; this script only needs re-running when a table changes.
"""
import re
import sys
import unicodedata as ud

# Code point blocks with a full per-code-point entry (lower case + fold).
BLOCKS = [(0x80, 0x530), (0x1E00, 0x2000)]
DROP = 0xFFFE  # a combining mark: part of a word, emits nothing


def is_word(c):
    return ud.category(c)[0] in "LN"


def is_mark(c):
    return ud.category(c)[0] == "M"


def lower1(c):
    lo = c.lower()
    if len(lo) != 1:
        if c == "\u0130":  # I WITH DOT ABOVE -> i
            return "i"
        return c
    return lo


SPECIAL = {
    "ß": "ss", "ẞ": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ð": "d", "ł": "l",
    "ħ": "h", "ı": "i", "þ": "th", "ŧ": "t", "ĸ": "k", "ŋ": "n", "ς": "σ", "ǝ": "e",
    "ə": "e", "ĳ": "ij", "ŀ": "l", "ſ": "s", "ǆ": "dz", "ǅ": "dz", "ǳ": "dz", "ǉ": "lj",
    "ǌ": "nj", "ƕ": "hv", "ȸ": "db", "ȹ": "qp", "ƣ": "oi", "ǣ": "ae", "ǽ": "ae",
    "ǿ": "o", "ǯ": "ʒ", "ё": "е", "ѐ": "е", "ѝ": "и", "ϐ": "β", "ϑ": "θ", "ϕ": "φ",
    "ϖ": "π", "ϰ": "κ", "ϱ": "ρ", "ϲ": "σ", "ϵ": "ε", "ẛ": "s", "ẜ": "s", "ẝ": "s",
    "µ": "μ", "ª": "a", "º": "o",
}
NAME_RE = re.compile(r"^LATIN (SMALL|CAPITAL) LETTER ([A-Z]) WITH ")


def fold1(c):
    """Lower case without diacritics, as a string ('' drops the character)."""
    if is_mark(c):
        return ""
    lo = lower1(c)
    if lo in SPECIAL:
        return SPECIAL[lo]
    if "\u0400" <= lo <= "\u052f":
        return lo  # Cyrillic: keep й, ї ... (only ё folds to е)
    d = "".join(x for x in ud.normalize("NFKD", lo) if not is_mark(x)).lower()
    if d and all(is_word(x) for x in d) and len(d.encode()) <= 4:
        if len(d) == 1 or d.isascii():
            return d
    m = NAME_RE.match(ud.name(lo, ""))
    if m:
        return m.group(2).lower()
    return lo


def emit_fold_tables(out):
    multi = []
    rows = []
    for lo_cp, hi_cp in BLOCKS:
        lower = []
        fold = []
        for cp in range(lo_cp, hi_cp):
            c = chr(cp)
            if is_mark(c):
                lower.append(DROP)
                fold.append(DROP)
            elif is_word(c):
                lc = lower1(c)
                lower.append(ord(lc))
                f = fold1(c)
                if len(f) == 1:
                    fold.append(ord(f))
                elif f == "":
                    fold.append(DROP)
                else:
                    if f not in multi:
                        multi.append(f)
                    fold.append(0xE000 + multi.index(f))
            else:
                lower.append(0)
                fold.append(0)
        rows.append((lo_cp, hi_cp, lower, fold))
    assert len(multi) < 0x100
    out.write("/* Multi-character folds, indexed by fold value - 0xE000. */\n")
    out.write("static const char fold_multi[][5] = {\n")
    for f in multi:
        out.write('    "%s", /* %s */\n' % ("".join("\\x%02x" % b for b in f.encode()), f))
    out.write("};\n\n")
    for lo_cp, hi_cp, lower, fold in rows:
        name = "%04x" % lo_cp
        out.write("#define FOLD_BLOCK_%s_END 0x%04x\n" % (name, hi_cp))
        for tname, vals in (("lower", lower), ("fold", fold)):
            out.write("static const uint16_t %s_%s[%d] = {\n" % (tname, name, len(vals)))
            for i in range(0, len(vals), 10):
                out.write("    " + ", ".join("0x%04x" % v for v in vals[i:i + 10]) + ",\n")
            out.write("};\n")
        out.write("\n")


def emit_ranges(out):
    """Word-character ranges outside the folded blocks (sorted, inclusive)."""
    ranges = {"start": [], "mark": []}
    in_block = set()
    for lo_cp, hi_cp in BLOCKS:
        in_block.update(range(lo_cp, hi_cp))
    cur = {"start": None, "mark": None}
    for cp in range(0x80, 0x110000):
        c = chr(cp)
        kind = None
        if cp not in in_block and not (0xD800 <= cp < 0xE000):
            if is_word(c):
                kind = "start"
            elif is_mark(c) and not (0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF):
                kind = "mark"
        for k in ("start", "mark"):
            if kind == k:
                if cur[k] is None:
                    cur[k] = cp
            elif cur[k] is not None:
                ranges[k].append((cur[k], cp - 1))
                cur[k] = None
    for k, name in (("start", "word_ranges"), ("mark", "mark_ranges")):
        out.write("/* Code points outside the folded blocks that %s a word. */\n" %
                  ("start or continue" if k == "start" else "continue (combining marks)"))
        out.write("static const uint32_t %s[][2] = {\n" % name)
        for a, b in ranges[k]:
            out.write("    {0x%05x, 0x%05x},\n" % (a, b))
        out.write("};\n\n")


# Stop words: true function words only. Words that carry a customer's intent
# stay tokens: negations (no, not, nor, cannot, don't ...), question words
# (how, why, where, when, what), and phrasal-verb particles (up, down, out,
# off, over: "sign up", "log out", "site down"). Contractions are listed
# folded ("i'm" -> "im"); ones that collide with content words ("id", "ill",
# "hell", "shell", "well") are left out.
STOP = {
    "en": """
a about above after again against all am an and any are as at be because been before being
below between both but by could did do does doing during each few for from further had has
have having he hed hell hes her here heres hers herself him himself his i if im in into is it
its itself ive lets me more most my myself of once only or other ought our ours ourselves own
same she shed shes should so some such than that thats the their theirs them themselves then
there theres these they theyd theyll theyre theyve this those through to too under until very
was we wed were weve which while who whom whos with would you youd youll your youre yours
yourself yourselves youve
""",
    "es": """
a al algo algunas algunos ante antes con contra cual de del desde durante e el ella ellas
ellos en entre era erais eran eras eres es esa esas ese eso esos esta estaba estabais estaban
estabas estad estada estadas estado estados estamos estando estar estaremos estará estarán
estarás estaré estaréis estaría estaríais estaríamos estarían estarías estas este estemos
esto estos estoy estuve estuviera estuvierais estuvieran estuvieras estuvieron estuviese
estuvieseis estuviesen estuvieses estuvimos estuviste estuvisteis estuviéramos estuviésemos
estuvo está estábamos estáis están estás esté estéis estén estés fue fuera fuerais fueran
fueras fueron fuese fueseis fuesen fueses fui fuimos fuiste fuisteis fuéramos fuésemos ha
habida habidas habido habidos habiendo habremos habrá habrán habrás habré habréis habría
habríais habríamos habrían habrías habéis había habíais habíamos habían habías han has hasta
hay haya hayamos hayan hayas hayáis he hemos hube hubiera hubierais hubieran hubieras
hubieron hubiese hubieseis hubiesen hubieses hubimos hubiste hubisteis hubiéramos hubiésemos
hubo la las le les lo los me mi mis mucho muchos muy más mí mía mías mío míos nos nosotras
nosotros nuestra nuestras nuestro nuestros o os otra otras otro otros para pero poco por
porque que quien quienes qué se sea seamos sean seas seremos será serán serás seré seréis
sería seríais seríamos serían serías seáis sido siendo sobre sois somos son soy su sus suya
suyas suyo suyos también tanto te tendremos tendrá tendrán tendrás tendré tendréis tendría
tendríais tendríamos tendrían tendrías tened tenemos tenga tengamos tengan tengas tengo
tengáis tenida tenidas tenido tenidos teniendo tenéis tenía teníais teníamos tenían tenías
ti tiene tienen tienes todo todos tu tus tuve tuviera tuvierais tuvieran tuvieras tuvieron
tuviese tuvieseis tuviesen tuvieses tuvimos tuviste tuvisteis tuviéramos tuviésemos tuvo
tuya tuyas tuyo tuyos tú un una uno unos vosotras vosotros vuestra vuestras vuestro
vuestros y ya yo él éramos
""",
    "fr": """
a ai aie aient aies ait as au aura aurai auraient aurais aurait auras aurez auriez aurions
aurons auront aux avaient avais avait avec avez aviez avions avons ayant ayez ayons c ce ceci
cela celà ces cet cette d dans de des du elle en es est et étaient étais était étant été
étée étées étés êtes étiez étions eu eue eues eûmes eurent eus eusse eussent eusses
eussiez eussions eut eût eûtes eux fûmes furent fus fusse fussent fusses fussiez fussions
fut fût fûtes il ils j je l la le les leur leurs lui m ma mais me même mes moi mon n nos
notre nous on ont ou par pour qu que quel quelle quelles quels qui s sa sans se sera serai
seraient serais serait seras serez seriez serions serons seront ses soi soient sois soit
sommes son sont soyez soyons suis sur t ta te tes toi ton tu un une vos votre vous y
""",
    "de": """
aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes
anderm andern anderr anders auch auf aus bei bin bis bist da damit dann das dass dasselbe
dazu daß dein deine deinem deinen deiner deines dem demselben den denn denselben der derer
derselbe derselben des desselben dessen dich die dies diese dieselbe dieselben diesem diesen
dieser dieses dir doch dort du durch ein eine einem einen einer eines einig einige einigem
einigen einiger einiges einmal er es etwas euch euer eure eurem euren eurer eures für gegen
gewesen hab habe haben hat hatte hatten hier hin hinter ich ihm ihn ihnen ihr ihre ihrem
ihren ihrer ihres im in indem ins ist jede jedem jeden jeder jedes jene jenem jenen jener
jenes jetzt man manche manchem manchen mancher manches mein meine meinem meinen meiner meines
mich mir mit muss musste nach nun nur ob oder ohne sehr sein seine seinem seinen seiner
seines selbst sich sie sind so solche solchem solchen solcher solches soll sollte sondern
sonst über um und uns unser unsere unserem unseren unserer unseres unter viel vom von vor
während war waren warst weg weil weiter welche welchem welchen welcher welches
werde werden wieder will wir wird wirst wollen wollte würde würden zu zum zur zwar
zwischen
""",
    "pt": """
a à ao aos aquela aquelas aquele aqueles aquilo as às até com da das de dela delas
dele deles depois do dos e é ela elas ele eles em entre era eram éramos essa essas esse
esses esta está estamos estão estas estava estavam estávamos este esteja estejam estejamos
estes esteve estive estivemos estiver estivera estiveram estivéramos estiverem estivermos
estivesse estivessem estivéssemos estou eu foi fomos for fora foram fôramos forem formos
fosse fossem fôssemos fui há haja hajam hajamos hão havemos hei houve houvemos houver
houvera houverá houveram houvéramos houverão houverei houverem houveremos houveria
houveriam houveríamos houvermos houvesse houvessem houvéssemos isso isto já lhe lhes mais
mas me mesmo meu meus minha minhas muito na nas nem no nos nós nossa nossas nosso nossos
num numa o os ou para pela pelas pelo pelos por qual que quem são se seja sejam
sejamos sem ser será serão serei seremos seria seriam seríamos seu seus só somos sou sua
suas também te tem tém temos tenha tenham tenhamos tenho terá terão terei teremos teria
teriam teríamos teu teus teve tinha tinham tínhamos tive tivemos tiver tivera tiveram
tivéramos tiverem tivermos tivesse tivessem tivéssemos tu tua tuas um uma você vocês vos
""",
    "it": """
a abbia abbiamo abbiano abbiate ad agl agli ai al all alla alle allo anche avemmo avendo
avesse avessero avessi avessimo aveste avesti avete aveva avevamo avevano avevate avevi
avevo avrai avranno avrebbe avrebbero avrei avremmo avremo avreste avresti avrete avrà avrò
avuta avute avuti avuto c che chi ci coi col con contro cui da dagl dagli dai dal dall
dalla dalle dallo degl degli dei del dell della delle dello di e ebbe ebbero ebbi
ed era erano eravamo eravate eri ero essendo faccia facciamo facciano facciate faccio
facemmo facendo facesse facessero facessi facessimo faceste facesti faceva facevamo
facevano facevate facevi facevo fai fanno farai faranno farebbe farebbero farei faremmo
faremo fareste faresti farete farà farò fece fecero feci fosse fossero fossi fossimo foste
fosti fu fui fummo furono gli ha hai hanno ho i il in io l la le lei li lo loro lui ma mi mia
mie miei mio ne negl negli nei nel nell nella nelle nello noi nostra nostre nostri nostro o
per più quale quanta quante quanti quanto quella quelle quelli quello questa queste
questi questo sarai saranno sarebbe sarebbero sarei saremmo saremo sareste saresti sarete
sarà sarò se sei si sia siamo siano siate siete sono sta stai stando stanno starai staranno
starebbe starebbero starei staremmo staremo stareste staresti starete starà starò stava
stavamo stavano stavate stavi stavo stemmo stesse stessero stessi stessimo steste stesti
stette stettero stetti stia stiamo stiano stiate sto su sua sue sugl sugli sui sul sull
sulla sulle sullo suo suoi ti tra tu tua tue tuo tuoi tutti tutto un una uno vi voi vostra
vostre vostri vostro è
""",
    "nl": """
aan al alles als altijd andere ben bij daar dan dat de der deze die dit doch doen door dus
een eens en er ge geweest haar had heb hebben heeft hem het hier hij hun iemand
iets ik in is ja je kan kon kunnen maar me meer men met mij mijn moet na naar nog nu of om
omdat onder ons ook op over reeds te tegen toch toen tot u uit uw van veel voor want waren
was we wel werd wezen wie wil worden wordt zal ze zelf zich zij zijn zo zonder zou
""",
}
# The same holds for the other languages: negations ("no", "non", "ne",
# "pas", "nicht", "kein", "niet", "geen", "não") and question words ("como",
# "cuando", "wie", "was", "wo", "hoe", "wat", "come", "dove", "perché",
# "quando") from the Snowball lists are not listed above.


def fold_word(w):
    return "".join(fold1(c) if ord(c) >= 0x80 else c.lower() for c in w)


def emit_stop(out):
    for lang in sorted(STOP):
        words = sorted(set(fold_word(w) for w in STOP[lang].split()), key=lambda w: w.encode())
        out.write("static const char *const stop_%s[] = {\n" % lang)
        line = "   "
        for w in words:
            item = ' "%s",' % w
            if len(line) + len(item) > 96:
                out.write(line + "\n")
                line = "   "
            line += item
        out.write(line + "\n};\n\n")
    out.write("static const struct stop_list stop_lists[] = {\n")
    for lang in sorted(STOP):
        out.write('    {"%s", stop_%s, sizeof stop_%s / sizeof stop_%s[0]},\n' %
                  (lang, lang, lang, lang))
    out.write("};\n")


def main():
    out = sys.stdout
    out.write("/* text_tables: generated by scripts/gen_text_tables.py (Unicode %s); "
              "do not edit. */\n\n" % ud.unidata_version)
    emit_fold_tables(out)
    emit_ranges(out)
    emit_stop(out)


if __name__ == "__main__":
    main()
