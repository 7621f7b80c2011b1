"""The names markup may use: the element and attribute names of HTML (current and obsolete), SVG and MathML.

htmltext.py keeps a tag as markup when its name is one of these or has the shape of a name (letters and
digits, joined by `-`, `_` or one `:` prefix, as Word's `o:p` and custom elements' `my-card`) and, unless
HTML defines it, attributes whose names have the shape of attribute names (no `@`, `<`, quotes); anything
else between `<` and `>` (`<jane.doe@mail.example>`, `<Bob Smith <bob@mail.example>>`) is text that a client
failed to escape.
A known name is never rewritten (`<mark>`, `<ruby>`, `lang=` stay, whoever is called Mark, Ruby or Lang); an
unknown one is read like text, and gives way where the scrub or a redaction would change it. Names are
lower case, as html.parser reports them.
"""

from __future__ import annotations

import re


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


ATTRIBUTE_SHAPE = re.compile(r"[a-z_:][-a-z0-9_:.]*")
TAG_SHAPE = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*(?::[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*)?")

ELEMENTS = _names("""
a abbr acronym address applet area article aside audio b base basefont bdi bdo bgsound big blink blockquote
body br button canvas caption center cite code col colgroup data datalist dd del details dfn dialog dir div dl
dt em embed fieldset figcaption figure font footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr
html i iframe image img input ins isindex kbd keygen label legend li link listing main map mark marquee menu
menuitem meta meter multicol nav nextid nobr noembed noframes noscript object ol optgroup option output p param
picture plaintext pre progress q rb rp rt rtc ruby s samp script search section select slot small source spacer
span strike strong style sub summary sup table tbody td template textarea tfoot th thead time title tr track tt
u ul var video wbr xmp
svg altglyph altglyphdef altglyphitem animate animatecolor animatemotion animatetransform circle clippath
color-profile cursor defs desc discard ellipse feblend fecolormatrix fecomponenttransfer fecomposite
feconvolvematrix fediffuselighting fedisplacementmap fedistantlight fedropshadow feflood fefunca fefuncb fefuncg
fefuncr fegaussianblur feimage femerge femergenode femorphology feoffset fepointlight fespecularlighting
fespotlight fetile feturbulence filter font-face font-face-format font-face-name font-face-src font-face-uri
foreignobject g glyph glyphref hkern line lineargradient marker mask metadata missing-glyph mpath path pattern
polygon polyline radialgradient rect set stop switch symbol text textpath tref tspan use view vkern
math maction maligngroup malignmark menclose merror mfenced mfrac mglyph mi mlabeledtr mlongdiv mmultiscripts mn
mo mover mpadded mphantom mprescripts mroot mrow ms mscarries mscarry msgroup msline mspace msqrt msrow mstack
mstyle msub msubsup msup mtable mtd mtext mtr munder munderover none semantics annotation annotation-xml
""")

ATTRIBUTES = _names("""
abbr accept accept-charset accesskey action align alink allow allowfullscreen alt archive as async autocapitalize
autocomplete autofocus autoplay axis background behavior bgcolor bgproperties border bordercolor bordercolordark
bordercolorlight bottommargin cellpadding cellspacing char charoff charset checked cite class classid clear code
codebase codetype color cols colspan compact content contenteditable controls coords crossorigin data datetime
declare decoding default defer dir dirname disabled download draggable enctype enterkeyhint face for form
formaction formenctype formmethod formnovalidate formtarget frame frameborder headers height hidden high href
hreflang hspace http-equiv id inert inputmode integrity is ismap itemid itemprop itemref itemscope itemtype kind
label lang language leftmargin link list loading longdesc loop low marginheight marginwidth max maxlength media
method min minlength multiple muted name nohref noresize noshade novalidate nowrap object open optimum pattern
ping placeholder popover poster preload profile readonly referrerpolicy rel required rev reversed rightmargin
role rows rowspan rules sandbox scheme scope scrolling selected shape size sizes slot span spellcheck src srcdoc
srclang srcset standby start step style summary tabindex target text title topmargin translate type usemap
valign value valuetype version vlink vspace width wrap xmlns xml:lang xml:space xlink:href xlink:title
accent-height alignment-baseline baseline-shift clip clip-path clip-rule clippathunits color-interpolation
color-interpolation-filters cx cy d dominant-baseline dx dy fill fill-opacity fill-rule filter filterunits
flood-color flood-opacity font-family font-size font-style font-weight fr fx fy gradienttransform gradientunits
image-rendering in in2 kerning lengthadjust letter-spacing lighting-color marker-end marker-mid marker-start
markerheight markerunits markerwidth mask maskcontentunits maskunits offset opacity operator orient overflow
paint-order pathlength patterncontentunits patterntransform patternunits points preserveaspectratio r radius
refx refy result rotate rx ry scale shape-rendering spreadmethod stddeviation stop-color stop-opacity stroke
stroke-dasharray stroke-dashoffset stroke-linecap stroke-linejoin stroke-miterlimit stroke-opacity stroke-width
text-anchor text-decoration text-rendering textlength transform transform-origin vector-effect viewbox
visibility word-spacing writing-mode x x1 x2 y y1 y2 z
accent accentunder columnalign columnlines columnspacing columnspan displaystyle fence linethickness mathbackground
mathcolor mathsize mathvariant movablelimits notation scriptlevel separator stretchy subscriptshift
superscriptshift symmetric voffset
""")


def known_element(name: str) -> bool:
    return name in ELEMENTS


def known_attribute(name: str) -> bool:
    return name in ATTRIBUTES


def markup(tag: str, attribute_names: list[str]) -> bool:
    """Whether a tag is markup rather than text a client failed to escape: its name has an element's shape
    and, for an element no standard defines, each of its attributes has an attribute's."""
    if tag in ELEMENTS:
        return True
    return TAG_SHAPE.fullmatch(tag) is not None and all(ATTRIBUTE_SHAPE.fullmatch(name) for name in attribute_names)
