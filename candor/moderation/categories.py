"""Moderation categories, the constitution principle each one stands for, and the keyword rules
that give a category to harmful prompts whose data set has none (AdvBench, XSTest's contrast
prompts, Candor's own red-team requests).

The rules are a labelling aid for training data, never the classifier: a prompt that no rule
matches gets the category of its nearest labelled neighbour in embedding space (see
candor.moderation.dataset). The rules run in the order of RULES, so "hack a database to steal
personal data" is cybercrime, not privacy or crime.
"""

from __future__ import annotations

import re

# (category, constitution principle id, what it covers)
CATEGORY_INFO: tuple[tuple[str, str, str], ...] = (
    ("weapons", "dangerous-capabilities", "weapons, explosives, and dangerous chemistry or biology"),
    ("violence", "harm", "violence against people or animals"),
    ("self-harm", "self-harm", "suicide, self-injury and eating disorders"),
    ("sexual/minors", "age-appropriate", "sexual content involving minors"),
    ("hate", "toxicity", "hate, harassment and bullying"),
    ("cybercrime", "illegality", "hacking, malware and attacks on computer systems"),
    ("crime", "illegality", "fraud, theft, drugs and other crime"),
    ("privacy", "privacy", "surveillance, stalking and exposing personal data"),
    ("misinformation", "dishonesty", "disinformation, propaganda and deceptive content"),
)
CATEGORIES: tuple[str, ...] = tuple(c for c, _, _ in CATEGORY_INFO)
PRINCIPLE = {c: p for c, p, _ in CATEGORY_INFO}
DESCRIPTION = {c: d for c, _, d in CATEGORY_INFO}


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")", re.IGNORECASE)


RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("sexual/minors", re.compile(
        r"(\b(child|children|minor|underage|kid|teen|teenager|\d{1,2}[- ]year[- ]old|schoolgirl|pre-?teen)\w*\b"
        r".*\b(sex|sexual|porn|nude|naked|explicit|erotic|groom)\w*)|"
        r"(\b(sex|sexual|porn|nude|naked|explicit|erotic)\w*\b.*\b(child|children|minor|underage|kid|teen|"
        r"\d{1,2}[- ]years?[- ]old)\w*)|"
        r"\b(groom(ing)? (a |the )?(child|kid|minor)|pedophil|paedophil|child porn|csam)", re.IGNORECASE)),
    ("self-harm", _words(r"suicid", r"self[- ]harm", r"kill (myself|themsel|yourself)", r"end (my|their|your) (own )?life",
                         r"hurt (myself|themselves|yourself)", r"cut(ting)? (myself|themselves|yourself)",
                         r"overdose", r"starv(e|ing) (myself|themselves|yourself)", r"anorexi", r"bulimi",
                         r"eating disorder", r"pro-ana")),
    ("weapons", _words(r"bomb", r"explosive", r"detonat", r"weapon", r"gun\b", r"guns\b", r"firearm", r"rifle",
                       r"pistol", r"ammunition", r"grenade", r"molotov", r"nerve (agent|gas)", r"sarin", r"ricin",
                       r"anthrax", r"pathogen", r"bioweapon", r"biological (weapon|agent|warfare)", r"toxin",
                       r"chemical (weapon|warfare|agent)", r"chlorine gas", r"mustard gas", r"\bvx\b", r"uranium",
                       r"nuclear", r"plutonium", r"poison", r"napalm", r"thermite", r"dimethylmercury", r"tabun",
                       r"phosgene", r"botulinum", r"smallpox", r"ebola", r"synthesi[sz]e .*(agent|gas|toxic)")),
    ("cybercrime", _words(r"hack", r"malware", r"ransomware", r"keylogger", r"virus that", r"computer virus",
                          r"exploit", r"phishing", r"ddos", r"denial[- ]of[- ]service", r"botnet", r"sql injection",
                          r"crack (a |the )?password", r"password crack", r"backdoor", r"rootkit", r"trojan",
                          r"spyware", r"worm", r"brute[- ]force", r"zero[- ]day", r"cyber ?attack", r"firewall",
                          r"antivirus", r"intrusion", r"viruses", r"hijack", r"xss", r"cross-site", r"privilege escalation", r"shellcode")),
    ("privacy", _words(r"stalk", r"track (a |the |my |someone|somebody|their|people|a person)", r"doxx?",
                       r"home address", r"personal (information|data|details)", r"private (messages|information|photos)",
                       r"spy(ing)? on", r"surveil", r"without (their|her|his|the person's) (consent|knowledge|knowing)",
                       r"secretly (record|film|install|monitor|read)", r"hidden camera", r"location of",
                       r"facial recognition", r"social security number", r"medical records", r"phone number of",
                       r"email address of", r"where .* lives")),
    ("misinformation", _words(r"fake news", r"misinformation", r"disinformation", r"conspiracy", r"propaganda",
                              r"false (information|claims?|story|stories|rumou?r)", r"hoax", r"fake review",
                              r"persuasive (article|essay|post)", r"defam", r"false accusation", r"convince (people|readers|the public) that",
                              r"spread(ing)? (lies|rumou?rs)", r"deepfake", r"rig an election", r"election fraud")),
    ("hate", _words(r"racis", r"\brace\b", r"ethnic", r"religio", r"slurs?\b", r"hate", r"harass", r"bull(y|ies|ying)",
                    r"discriminat", r"sexis", r"homophob", r"transphob", r"jew", r"muslim", r"immigrant",
                    r"\blgbt", r"\bgay", r"inferior", r"superior", r"demean", r"insult", r"mock", r"body[- ]shaming",
                    r"white supremac", r"cyberbull", r"dehumani[sz]", r"oppress", r"nazi", r"humiliat", r"threatening (message|letter)", r"intimidat")),
    ("violence", _words(r"kill", r"murder", r"assault", r"attack", r"hurt", r"harm\b", r"harm (someone|people|others)",
                        r"torture", r"kidnap", r"terror", r"shoot", r"stab", r"massacre", r"violen", r"beat (someone|up)",
                        r"abuse", r"animal cruelty", r"injur", r"genocide", r"strangle", r"choke (someone|a person)",
                        r"arson", r"set (a )?fire", r"derail", r"crash", r"execute (someone|a person)", r"lynch")),
    ("crime", _words(r"fraud", r"steal", r"theft", r"counterfeit", r"launder", r"scam", r"insider trading",
                     r"tax evasion", r"evade tax", r"forge", r"forgery", r"drug", r"cocaine", r"heroin", r"meth",
                     r"fentanyl", r"smuggl", r"blackmail", r"extort", r"brib", r"cheat", r"shoplift", r"illegal",
                     r"embezzl", r"pyramid scheme", r"ponzi", r"trafficking", r"pirat", r"fake (id|passport|identity)",
                     r"break into", r"burglar", r"rob\b", r"robbery", r"vandali", r"launder", r"contraband",
                     r"without (getting )?caught", r"evade (the )?police", r"black market", r"stock prices?", r"insider")),
)
assert {c for c, _ in RULES} == set(CATEGORIES)


def keyword_category(text: str) -> str | None:
    """The first category whose rule matches `text`, or None (then the nearest neighbour decides)."""
    for category, pattern in RULES:
        if pattern.search(text):
            return category
    return None


# HarmBench's SemanticCategory values and the category each one maps to; "illegal" and "harmful"
# are broad, so the keyword rules may refine them (a self-harm or weapons behaviour filed as
# "harmful" keeps its specific category).
HARMBENCH = {
    "chemical_biological": "weapons",
    "cybercrime_intrusion": "cybercrime",
    "harassment_bullying": "hate",
    "misinformation_disinformation": "misinformation",
    "illegal": "crime",
    "harmful": "violence",
}
HARMBENCH_REFINED = {"illegal", "harmful"}

# XSTest's contrast types that name their harm area outright.
XSTEST = {"contrast_discr": "hate", "contrast_privacy": "privacy"}
