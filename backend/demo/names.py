"""The demo tenant's words: names, companies, cities, deals and the product catalog."""

from __future__ import annotations

# The demo tenant's name: `caravan demo --reset` drops a tenant only if it carries this name, so
# a mistyped --slug can never delete a real tenant.
DEMO_TENANT_NAME = "Demo Trading Ltd"
CALL_NOTES = [
    "Asked for a quote on the spring order",
    "Unhappy with the last delivery; promised a call back",
    "Budget approved; wants a demo next week",
]
DEALS = ["Annual licence", "Fleet renewal", "Pilot project", "Service contract", "Expansion"]
# The usual weighted-pipeline probability of each stage (closed deals: certain either way).
STAGE_PROBABILITY = {
    "prospecting": 10,
    "qualification": 25,
    "proposal": 50,
    "negotiation": 75,
    "closed_won": 100,
    "closed_lost": 0,
}

FIRST = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elif",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Luca",
    "Maya",
    "Nils",
    "Olga",
    "Pavel",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wim",
    "Yara",
    "Zoe",
]
LAST = [
    "Albrecht",
    "Bianchi",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Hansen",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Urban",
    "Varga",
    "Weber",
    "Yilmaz",
]
PREFIX = [
    "North",
    "Blue",
    "Alpine",
    "Harbor",
    "Summit",
    "Granite",
    "Silver",
    "Meadow",
    "Iron",
    "Coastal",
    "Evergreen",
    "Atlas",
    "Nova",
    "Pioneer",
    "Crescent",
    "Falcon",
]
SUFFIX = [
    "Logistics",
    "Foods",
    "Analytics",
    "Builders",
    "Pharma",
    "Textiles",
    "Energy",
    "Motors",
    "Media",
    "Robotics",
    "Travel",
    "Furniture",
]
INDUSTRY = {
    "Logistics": "Transport",
    "Foods": "Food & Beverage",
    "Analytics": "Software",
    "Builders": "Construction",
    "Pharma": "Healthcare",
    "Textiles": "Manufacturing",
    "Energy": "Utilities",
    "Motors": "Automotive",
    "Media": "Media",
    "Robotics": "Manufacturing",
    "Travel": "Hospitality",
    "Furniture": "Retail",
}
CITIES = [
    ("Berlin", "DE", "+49 30"),
    ("Lyon", "FR", "+33 4"),
    ("Milan", "IT", "+39 02"),
    ("Porto", "PT", "+351 22"),
    ("Gdańsk", "PL", "+48 58"),
    ("Ghent", "BE", "+32 9"),
    ("Aarhus", "DK", "+45 8"),
    ("Graz", "AT", "+43 316"),
]
TITLES = [
    "Buyer",
    "Head of Purchasing",
    "CFO",
    "Operations Manager",
    "CEO",
    "IT Lead",
    "Office Manager",
    "Procurement Specialist",
]
# (name, sku, category, unit_price, unit_cost): a small catalog with a margin on every line.
CATALOG = [
    ("Fleet tracker", "FT-100", "Hardware", "249.00", "140.00"),
    ("Route planner licence", "RP-200", "Software", "1200.00", "180.00"),
    ("Driver app seat", "DA-010", "Software", "19.00", "2.50"),
    ("Installation day", "SV-001", "Services", "890.00", "520.00"),
    ("Support plan (year)", "SV-100", "Services", "2400.00", "900.00"),
    ("Cold-chain sensor", "CS-300", "Hardware", "129.00", "61.00"),
    ("Training workshop", "SV-050", "Services", "1500.00", "700.00"),
]
LEAD_SOURCES = ["web", "trade fair", "referral", "cold call", "newsletter"]
CASE_SUBJECTS = [
    ("Tracker shows no position", "problem"),
    ("Invoice address is wrong", "request"),
    ("How do I add a driver?", "question"),
    ("Sensor arrived damaged", "return"),
    ("Late response from support", "complaint"),
]
ARTICLES = [
    ("Adding drivers to the app", "Open Settings, Drivers, Add. Each driver gets an invite."),
    ("Tracker shows no position", "Check the tracker's power and that it sees the sky."),
    ("Returning a damaged sensor", "Log a case with photos; we send a return label."),
    ("Changing the invoice address", "Admins change it under Billing, Address."),
]
