"""The colours that pictures share (the gallery's figures, the explorer's pages): the Okabe–Ito palette
and one colour per outcome. Plain hex strings, no matplotlib, so a page can read them without it."""

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
OUTCOME_COLORS = {
    "converged": OKABE_ITO["green"],
    "unfinished": OKABE_ITO["sky"],
    "diverged": OKABE_ITO["vermillion"],
    "stuck": OKABE_ITO["purple"],
    "no_progress": OKABE_ITO["yellow"],
}
