"""A seeded knowledge base (20 articles in English, German and French) and the sample
questions whose expected article must rank first."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TenantUser

ARTICLES: list[dict[str, Any]] = [
    {
        "title": "Reset your password",
        "tags": ["account", "login"],
        "body": "Forgot your password? On the sign-in page choose *Forgot password*; we email a "
        "reset link that is valid for one hour.",
    },
    {
        "title": "Set up two-factor authentication",
        "tags": ["security", "login", "mfa"],
        "body": "Protect your account with an authenticator app: scan the QR code, then enter "
        "the six-digit code.",
    },
    {
        "title": "Change your billing address",
        "tags": ["billing"],
        "body": "Your billing address is printed on every invoice. Change it under Settings.",
    },
    {
        "title": "Download an invoice as PDF",
        "tags": ["billing", "invoice"],
        "body": "Open Billing, pick the invoice and press *Download PDF*.",
    },
    {
        "title": "Cancel your subscription",
        "tags": ["billing", "subscription"],
        "body": "You can cancel at any time; the plan runs until the end of the paid period.",
    },
    {
        "title": "Return a damaged product",
        "tags": ["returns", "shipping"],
        "body": "If your order arrived damaged, start a return within 30 days and we send a "
        "replacement or refund.",
    },
    {
        "title": "Track your shipment",
        "tags": ["shipping", "delivery"],
        "body": "Use the tracking number in your confirmation email to see where the parcel is.",
    },
    {
        "title": "Change the delivery address of an order",
        "tags": ["shipping", "delivery"],
        "body": "Before the order ships you can change where it is delivered.",
    },
    {
        "title": "Refund processing times",
        "tags": ["refund", "billing"],
        "body": "Refunds are credited to the original payment method within 5-10 business days.",
    },
    {
        "title": "Update your credit card",
        "tags": ["billing", "payment"],
        "body": "Replace an expired card under Billing > Payment methods.",
    },
    {
        "title": "Export your contacts to CSV",
        "tags": ["data", "export"],
        "body": "Contacts > Export writes every contact you may read to a CSV file.",
    },
    {
        "title": "Import contacts from a spreadsheet",
        "tags": ["data", "import"],
        "body": "Upload an Excel or CSV spreadsheet; columns are matched to contact fields.",
    },
    {
        "title": "Invite a colleague to your workspace",
        "tags": ["users", "team"],
        "body": "Admins invite colleagues by email; the invitation expires after a week.",
    },
    {
        "title": "Delete your account",
        "tags": ["account", "privacy"],
        "body": "Deleting your account removes your data after 30 days.",
    },
    {
        "title": "Privacy and GDPR data requests",
        "tags": ["privacy", "gdpr"],
        "body": "Ask for a copy of your personal data, or for its erasure.",
    },
    {
        "title": "Connect your calendar",
        "tags": ["calendar", "integration"],
        "body": "Subscribe to your agenda from Google Calendar or Outlook with the feed link.",
    },
    {
        "title": "Warranty claims for defective devices",
        "tags": ["warranty", "returns"],
        "body": "A device that stops working within two years is repaired or replaced.",
    },
    {
        "title": "Passwort zurücksetzen",
        "tags": ["konto", "anmeldung"],
        "language": "de",
        "body": "Sie haben Ihr Passwort vergessen? Klicken Sie auf der Anmeldeseite auf "
        "*Passwort vergessen*; wir senden Ihnen einen Link.",
    },
    {
        "title": "Rechnung herunterladen",
        "tags": ["rechnung"],
        "language": "de",
        "body": "Ihre Rechnungen finden Sie unter Abrechnung als PDF.",
    },
    {
        "title": "Réinitialiser votre mot de passe",
        "tags": ["compte"],
        "language": "fr",
        "body": "Sur la page de connexion, choisissez *Mot de passe oublié*.",
    },
]

# (question, title of the article expected first)
QUESTIONS: list[tuple[str, str]] = [
    ("how do I reset my password", "Reset your password"),
    ("pasword reset", "Reset your password"),  # typo
    ("where can I download my invoice", "Download an invoice as PDF"),
    ("my order arrived damaged", "Return a damaged product"),
    ("when will I get my refund", "Refund processing times"),
    ("wher is my shipmnet", "Track your shipment"),  # typos only: trigrams
    ("Wie kann ich mein Passwort zurücksetzen?", "Passwort zurücksetzen"),  # German
    ("how to cancel my subscription", "Cancel your subscription"),
    ("authentification with an app", "Set up two-factor authentication"),  # typo
    ("importing contacts from spreadsheets", "Import contacts from a spreadsheet"),  # stems
]


async def write_article(
    client: httpx.AsyncClient, user: TenantUser, **fields: Any
) -> dict[str, Any]:
    body = {"body": "Text.", "language": "en", "status": "published"} | fields
    created = await client.post("/api/v1/knowledge/articles", json=body, headers=user.headers)
    assert created.status_code == 201, created.text
    article: dict[str, Any] = created.json()
    return article


async def seed_knowledge_base(client: httpx.AsyncClient, admin: TenantUser) -> dict[str, str]:
    """The seeded articles' ids by title."""
    ids = {}
    for article in ARTICLES:
        ids[article["title"]] = (await write_article(client, admin, **article))["id"]
    return ids


async def search(client: httpx.AsyncClient, user: TenantUser, q: str) -> list[dict[str, Any]]:
    got = await client.get("/api/v1/knowledge/articles", params={"q": q}, headers=user.headers)
    assert got.status_code == 200, got.text
    items: list[dict[str, Any]] = got.json()["items"]
    return items
