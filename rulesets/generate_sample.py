#!/usr/bin/env python3
"""Generate the Acme Télécom sample data set for the 2026-12 billing run.

Writes the CSV files of docs/dataset.md to ``rulesets/acme-data/`` (next to this script):
customers, sites, accounts, subscriptions, quantity_changes, one_shots, usage, discounts. The
data goes with ``rulesets/acme.bareme``: every product, price list, commitment and discount code
it uses exists there.

Contract:
- deterministic: one ``random.Random(2026)``, no other source of randomness (no clock, no hash
  order); running it twice gives byte-identical files;
- standard library only, except python-stdnum, used to *verify* the legal identifiers that the
  generator computes itself (SIREN Luhn key, FR/BE/DE/ES/IT/LU VAT keys, IBAN);
- the data set is valid (it loads without errors); the special cases ("planted" below) are
  business situations and anomalies that a billing run must handle, not malformed rows;
- the planted cases are printed on stdout with their customer ids (see rulesets/README.md).

Usage: ``.venv/bin/python rulesets/generate_sample.py [--out DIR]``
"""

from __future__ import annotations

import argparse
import csv
import random
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from stdnum import iban as std_iban
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren as fr_siren

SEED = 2026
NOV1, NOV30, DEC1 = date(2026, 11, 1), date(2026, 11, 30), date(2026, 12, 1)
CET = timezone(timedelta(hours=1))  # Europe/Paris in November and December (winter time)
HOLIDAYS = {date(2026, 11, 1), date(2026, 11, 11)}

# ------------------------------------------------------------------------------ reference lists
ACTIVITIES = [
    "Boulangerie", "Cabinet", "Transports", "Garage", "Pharmacie", "Imprimerie", "Menuiserie",
    "Agence", "Laboratoire", "Clinique vétérinaire", "Hôtel", "Restaurant", "Bureau d'études",
    "Plomberie", "Électricité", "Fromagerie", "Librairie", "Optique", "Auto-école", "Architectes",
    "Expertise comptable", "Notaires", "Immobilier", "Carrosserie", "Traiteur", "Domaine",
]
SURNAMES = [
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet",
    "François", "Martinez", "Legrand", "Garnier", "Faure", "Rousseau", "Blanc", "Guérin", "Muller",
    "Henry", "Roussel", "Nicolas", "Perrin", "Morin", "Mathieu", "Clément", "Gauthier", "Chevalier",
]
FORMS = ["SARL", "SAS", "SAS", "EURL", "SA", "SASU", "SCP", "SELARL"]
BIG_NAMES = [
    "Groupe Rhône Logistique", "Alpes Santé Mutuelle", "Valoris Ingénierie", "Transalp Frigo",
    "Lumen Distribution", "Cimes Habitat", "Saône Agro Industries", "Hexa Conseil",
    "Batilyon Construction", "Mutuelle des Traboules", "Ormeaux Services Techniques",
    "Novacom Retail", "Biotech Gerland", "Sud-Est Intérim", "Dauphiné Énergies",
    "Forez Métallurgie", "Clinique des Monts d'Or", "Institut Confluence Formation",
    "Beaujolais Vignobles", "Isère Mobilité", "Loire Cartonnages", "Atelier Canut Textile",
    "Auvergne Laiterie", "Provence Hôtellerie", "Rhodanie Chimie Fine", "Bresse Volailles",
    "Vercors Télésièges", "Alpine Robotics",
]
FR_CITIES = [
    ("Lyon", "69003"), ("Lyon", "69007"), ("Villeurbanne", "69100"), ("Vénissieux", "69200"),
    ("Villefranche-sur-Saône", "69400"), ("Grenoble", "38000"), ("Saint-Étienne", "42000"),
    ("Annecy", "74000"), ("Chambéry", "73000"), ("Valence", "26000"), ("Bourg-en-Bresse", "01000"),
    ("Mâcon", "71000"), ("Clermont-Ferrand", "63000"), ("Dijon", "21000"), ("Paris", "75008"),
    ("Paris", "75011"), ("Marseille", "13002"), ("Montpellier", "34000"), ("Nice", "06000"),
    ("Toulouse", "31000"), ("Bordeaux", "33000"), ("Nantes", "44000"), ("Lille", "59000"),
    ("Strasbourg", "67000"), ("Rennes", "35000"), ("Limoges", "87000"), ("Roanne", "42300"),
]
STREETS = [
    "rue de la République", "avenue Jean Jaurès", "rue Garibaldi", "cours Lafayette",
    "boulevard des Belges", "rue du Commerce", "avenue de la Gare", "rue Pasteur", "rue Victor Hugo",
    "chemin des Vignes", "zone artisanale des Platanes", "rue de l'Industrie", "place Bellecour",
    "quai Perrache", "route de Vienne", "allée des Tilleuls", "rue Paul Bert", "avenue Foch",
]
BANK_CODES = ["30004", "30003", "10278", "30002", "20041", "16807", "10907", "13825", "18706"]
FOREIGN = {  # country: (city, postal code, street)
    "BE": [("Bruxelles", "1000", "rue de la Loi"), ("Liège", "4000", "boulevard d'Avroy")],
    "DE": [("Freiburg im Breisgau", "79098", "Kaiser-Joseph-Straße")],
    "ES": [("Barcelona", "08008", "Passeig de Gràcia")],
    "IT": [("Torino", "10121", "Via Roma")],
    "LU": [("Luxembourg", "1840", "boulevard Joseph II")],
    "CH": [("Genève", "1204", "rue du Rhône")],
}
ACCOUNT_NAMES = [
    "Direction générale", "DSI", "Direction commerciale", "Services techniques", "Logistique",
    "Réseau d'agences",
]
ZONE_MIX = [  # (weight, generator name): destinations of fixed-line calls
    (44, "fr_fixed"), (9, "fr_voip"), (26, "fr_mobile"), (1.2, "fr_special"), (0.6, "fr_free"),
    (0.2, "fr_premium"), (1.0, "fr_dom"), (9, "eu"), (3, "europe_other"), (2.5, "nanp"),
    (1.6, "row"), (0.05, "satellite"),
]
HOURS = [0.1, 0.05, 0.02, 0.02, 0.02, 0.05, 0.2, 0.8, 3, 5, 6, 5.5, 3, 3.5, 5.5, 6, 5.5, 4.5, 3,
         1.5, 0.8, 0.5, 0.3, 0.2]


def add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    last = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30,
            31, 31, 30, 31, 30, 31][month - 1]
    return date(year, month, min(d.day, last))


def ascii_slug(text: str) -> str:
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in flat.lower() if c.isalnum())[:24] or "client"


# ------------------------------------------------------------------------- legal identifiers
def luhn_key(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        v = int(ch)
        if i % 2 == 0:  # positions that are doubled once the key is appended
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return str((10 - total % 10) % 10)


def fr_vat(siren: str) -> str:
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


def mod_11_10_key(digits: str) -> str:
    check = 5
    for ch in digits:
        check = (((check or 10) * 2) % 11 + int(ch)) % 10
    return str((1 - ((check or 10) * 2) % 11) % 10)


def foreign_vat(rng: random.Random, country: str) -> str:
    if country == "BE":
        body = "0" + "".join(rng.choice("0123456789") for _ in range(7))
        body = "0" + str(rng.randint(2000000, 9999999)) if body == "00000000" else body
        return f"BE{body}{97 - int(body) % 97:02d}"
    if country == "DE":
        body = str(rng.randint(10000000, 99999999))
        return f"DE{body}{mod_11_10_key(body)}"
    if country == "ES":  # CIF of a "sociedad limitada" (letter B), numeric control digit
        body = "".join(rng.choice("0123456789") for _ in range(7))
        odd = sum(sum(divmod(2 * int(body[i]), 10)) for i in range(0, 7, 2))
        even = sum(int(body[i]) for i in range(1, 7, 2))
        return f"ESB{body}{(10 - (odd + even) % 10) % 10}"
    if country == "IT":
        body = "".join(rng.choice("0123456789") for _ in range(7)) + f"{rng.randint(1, 100):03d}"
        return f"IT{body}{luhn_key(body)}"
    if country == "LU":
        body = str(rng.randint(100000, 999999))
        return f"LU{body}{int(body) % 89:02d}"
    raise ValueError(country)


def fr_iban(rng: random.Random) -> str:
    bank, branch = rng.choice(BANK_CODES), f"{rng.randint(1, 99999):05d}"
    account = f"{rng.randint(0, 10**11 - 1):011d}"
    rib_key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
    bban = f"{bank}{branch}{account}{rib_key:02d}"
    check = 98 - int(bban + "152700") % 97  # F=15, R=27
    return f"FR{check:02d}{bban}"


# ------------------------------------------------------------------------------ the generator
class Sample:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.customers: list[dict[str, str]] = []
        self.sites: list[dict[str, str]] = []
        self.accounts: list[dict[str, str]] = []
        self.subs: list[dict[str, str]] = []
        self.qchanges: list[dict[str, str]] = []
        self.one_shots: list[dict[str, str]] = []
        self.usage: list[dict[str, str]] = []
        self.grants: list[dict[str, str]] = []
        self.planted: list[tuple[str, str]] = []
        self.sirens: set[str] = set()
        self.msisdns: set[str] = set()
        self.trunk_no = 10000
        self.sub_no = 0
        self.big_names = list(BIG_NAMES)
        self.moved: dict[str, str] = {}
        self.pbx_no = 20000
        self.by_customer: dict[str, list[dict[str, str]]] = {}
        self.profile: dict[str, str] = {}
        self.cust_sites: dict[str, list[str]] = {}
        self.cust_accounts: dict[str, list[str]] = {}

    def plant(self, who: str, what: str) -> None:
        self.planted.append((who, what))

    # ------------------------------------------------------------------ identifiers
    def new_siren(self) -> str:
        while True:
            body = str(self.rng.randint(30000000, 99999999))
            siren = body + luhn_key(body)
            if siren not in self.sirens:
                assert fr_siren.is_valid(siren), siren
                self.sirens.add(siren)
                return siren

    def new_msisdn(self) -> str:
        while True:
            if self.rng.random() < 0.7:
                n = "+336" + f"{self.rng.randint(0, 99999999):08d}"
            else:
                n = "+337" + str(self.rng.randint(3, 8)) + f"{self.rng.randint(0, 9999999):07d}"
            if n not in self.msisdns:
                self.msisdns.add(n)
                return n

    def new_trunk(self) -> str:
        self.trunk_no += 1
        return f"TRK{self.trunk_no}"

    def new_pbx(self) -> str:
        self.pbx_no += 1
        return f"PBX{self.pbx_no}"

    # ------------------------------------------------------------------ customers and sites
    def add_customer(self, profile: str, country: str = "FR") -> str:
        rng = self.rng
        cid = f"C{len(self.customers) + 1:04d}"
        if profile in ("enterprise", "large"):
            name = self.big_names.pop(0) + " " + rng.choice(["SA", "SAS"])
        else:
            name = f"{rng.choice(ACTIVITIES)} {rng.choice(SURNAMES)} {rng.choice(FORMS)}"
            while any(c["legal_name"] == name for c in self.customers):
                name = f"{rng.choice(ACTIVITIES)} {rng.choice(SURNAMES)} {rng.choice(FORMS)}"
        if country == "FR":
            city, postal = rng.choice(FR_CITIES)
            street = rng.choice(STREETS)
        else:
            city, postal, street = rng.choice(FOREIGN[country])
            name = {"BE": f"{rng.choice(SURNAMES)} & Fils SRL", "DE": "Schwarzwald Technik GmbH",
                    "ES": "Distribuciones Costa Brava SL", "IT": "Piemonte Logistica Srl",
                    "LU": "Moselle Fiduciaire SARL", "CH": "Léman Horlogerie SA"}[country]
            if country == "BE" and any(c["country"] == "BE" for c in self.customers):
                name = "Brasserie Ardennaise SRL"
                city, postal, street = FOREIGN["BE"][1]
        row = {
            "customer_id": cid, "legal_name": name, "country": country, "siren": "",
            "vat_number": "", "address": f"{rng.randint(1, 180)} {street}",
            "postal_code": postal, "city": city, "segment": "", "pricelist": "", "iban": "",
            "email": f"factures@{ascii_slug(name)}.{country.lower() if country != 'FR' else 'fr'}",
        }
        if country == "FR":
            row["siren"] = self.new_siren()
            if profile != "micro" or rng.random() < 0.85:
                row["vat_number"] = fr_vat(row["siren"])
            if rng.random() < 0.6:
                row["iban"] = fr_iban(rng)
                assert std_iban.is_valid(row["iban"]), row["iban"]
            row["segment"] = {
                "micro": "sme" if rng.random() < 0.6 else "",
                "sme": "sme" if rng.random() < 0.85 else "",
                "enterprise": "enterprise" if rng.random() < 0.85 else "",
                "large": "enterprise",
            }[profile]
        elif country != "CH":
            row["vat_number"] = foreign_vat(rng, country)
            assert eu_vat.is_valid(row["vat_number"]), row["vat_number"]
            row["segment"] = "sme"
        self.customers.append(row)
        self.profile[cid] = profile
        self.by_customer[cid] = []
        self.cust_sites[cid] = []
        self.cust_accounts[cid] = []
        return cid

    def customer(self, cid: str) -> dict[str, str]:
        return self.customers[int(cid[1:]) - 1]

    def add_site(self, cid: str, name: str | None = None) -> str:
        rng, cust = self.rng, self.customer(cid)
        n = len(self.cust_sites[cid]) + 1
        sid = f"{cid}-S{n}"
        if n == 1:
            city, postal, address, country = (cust["city"], cust["postal_code"], cust["address"],
                                              cust["country"])
            label = name or f"Siège - {city}"
        else:
            city, postal = rng.choice(FR_CITIES)
            address, country = f"{rng.randint(1, 180)} {rng.choice(STREETS)}", "FR"
            label = name or rng.choice(["Agence", "Entrepôt", "Usine", "Boutique", "Plateforme"]) + f" {city}"
        self.sites.append({"site_id": sid, "customer_id": cid, "name": label, "address": address,
                           "postal_code": postal, "city": city, "country": country})
        self.cust_sites[cid].append(sid)
        return sid

    def add_accounts(self, cid: str, count: int) -> None:
        for i, name in enumerate(self.rng.sample(ACCOUNT_NAMES, count), start=1):
            aid = f"{cid}-A{i}"
            self.accounts.append({"account_id": aid, "customer_id": cid, "name": name})
            self.cust_accounts[cid].append(aid)

    # ------------------------------------------------------------------ subscriptions
    def add_sub(self, cid: str, product: str, quantity: int, start: date, site: str = "",
                account: str = "", commitment: str = "", line: str = "") -> dict[str, str]:
        if not line:
            line = {"SIP_TRUNK_10": self.new_trunk, "SIP_TRUNK_30": self.new_trunk,
                    "PBX_SEAT": self.new_pbx, "MOBILE_PRO": self.new_msisdn}.get(product, str)()
        self.sub_no += 1
        sub = {
            "subscription_id": f"SUB{self.sub_no:05d}", "customer_id": cid,
            "product": product, "quantity": str(quantity), "start_date": start.isoformat(),
            "end_date": "", "site_id": site, "account_id": account, "line_id": line,
            "unit_price": "", "commitment": commitment, "commitment_start": "",
        }
        self.subs.append(sub)
        self.by_customer[cid].append(sub)
        return sub

    def pick_commitment(self, product: str, profile: str) -> str:
        r = self.rng.random()
        if product in ("FTTO_100", "FTTO_1G"):
            if profile in ("enterprise", "large") and r < 0.35:
                return "ENGAGEMENT_36"
            return "ENGAGEMENT_24" if r < 0.75 else "ENGAGEMENT_12"
        if product in ("SIP_TRUNK_10", "SIP_TRUNK_30", "PBX_SEAT"):
            if profile == "large" and r < 0.5:
                return "ENGAGEMENT_36"
            return "ENGAGEMENT_12" if r < 0.55 else "ENGAGEMENT_24" if r < 0.9 else ""
        if product == "MOBILE_PRO":
            return "ENGAGEMENT_12" if r < 0.4 else "ENGAGEMENT_24" if r < 0.6 else ""
        if product == "SUPPORT_PREMIUM":
            return "ENGAGEMENT_12" if r < 0.5 else ""
        return ""

    def rand_date(self, lo: date, hi: date) -> date:
        return lo + timedelta(days=self.rng.randint(0, (hi - lo).days))

    def populate(self, cid: str, since: date) -> None:
        """The base subscriptions of a customer, all started between `since` and 2026-10-31."""
        rng, prof = self.rng, self.profile[cid]
        last = max(since, date(2026, 10, 31))

        def start() -> date:
            return self.rand_date(since, min(last, add_months(since, 3)))

        def sub(product: str, qty: int, site: str, account: str = "", when: date | None = None,
                commitment: str | None = None) -> dict[str, str]:
            c = self.pick_commitment(product, prof) if commitment is None else commitment
            return self.add_sub(cid, product, qty, when or start(), site, account, c)

        sites = self.cust_sites[cid]
        accounts = self.cust_accounts[cid]
        hq = sites[0]
        if prof == "micro":
            kind = rng.choice(["sip", "pbx", "mobile", "sip"])
            n = rng.randint(1, 3)
            if kind == "sip":
                sub("SIP_TRUNK_10", 1, hq)
                extras = ["FTTO_100", "MOBILE_PRO"]
            elif kind == "pbx":
                sub("PBX_SEAT", rng.randint(1, 6), hq)
                extras = ["MOBILE_PRO", "MOBILE_PRO"]
            else:
                sub("MOBILE_PRO", 1, hq)
                extras = ["MOBILE_PRO", "MOBILE_PRO"]
            for product in extras[: n - 1]:
                sub(product, 1, hq)
        elif prof in ("sme", "eu_sme", "ch"):
            foreign = prof != "sme"
            for i, site in enumerate(sites):
                if not foreign and rng.random() < 0.8:
                    sub("FTTO_100", 1, site)
                    if rng.random() < 0.5:
                        sub("ROUTER_RENTAL", 1, site, commitment="")
                if i == 0 or rng.random() < 0.5:
                    if prof == "ch":
                        sub("SIP_TRUNK_30", 1, site)
                        sub("PBX_SEAT", 24, site)
                    elif rng.random() < 0.55:
                        sub("PBX_SEAT", rng.randint(3, 19), site)
                    else:
                        sub("SIP_TRUNK_10", 1, site)
            if not foreign:
                for _ in range(rng.randint(0, 6)):
                    sub("MOBILE_PRO", 1, hq)
            if rng.random() < 0.25 or prof == "ch":
                sub("SUPPORT_PREMIUM", 1, hq)
            del self.by_customer[cid][10:]  # an SME keeps at most 10 subscriptions
            self.subs = [s for s in self.subs if s["customer_id"] != cid] + self.by_customer[cid]
        else:  # enterprise, large
            for i, site in enumerate(sites):
                acc = accounts[i % len(accounts)]
                fibre = "FTTO_1G" if i == 0 else rng.choice(["FTTO_100", "FTTO_100", "FTTO_1G"])
                sub(fibre, 1, site, acc)
                if rng.random() < 0.6:
                    sub("ROUTER_RENTAL", 1, site, acc, commitment="")
                seats = rng.randint(5, 45)
                if i == 0 and prof == "large":
                    seats = rng.choice([56, 64, 85, 120, 185])
                sub("PBX_SEAT", seats, site, acc)
            if rng.random() < 0.5 or prof == "large":
                sub("SIP_TRUNK_30", 1, hq, accounts[0])
            for _ in range(rng.randint(20, 45) if prof == "large" else rng.randint(5, 25)):
                sub("MOBILE_PRO", 1, hq, rng.choice(accounts))
            if rng.random() < 0.6:
                sub("SUPPORT_PREMIUM", 1, hq, accounts[0])

    # ------------------------------------------------------------------ the base population
    def build(self) -> None:
        rng = self.rng
        profiles = (["micro"] * 120 + ["sme"] * 74 + ["enterprise"] * 22 + ["large"] * 5
                    + ["eu_sme"] * 6 + ["ch"])
        rng.shuffle(profiles)
        eu_countries = ["BE", "DE", "ES", "IT", "LU", "BE"]
        for prof in profiles:
            country = eu_countries.pop(0) if prof == "eu_sme" else "CH" if prof == "ch" else "FR"
            cid = self.add_customer(prof, country)
            nsites = {"micro": 1, "sme": rng.choice([1, 1, 1, 2]), "eu_sme": 1, "ch": 1,
                      "enterprise": rng.randint(2, 6), "large": rng.randint(4, 6)}[prof]
            for _ in range(nsites):
                self.add_site(cid)
            if prof in ("enterprise", "large"):
                self.add_accounts(cid, rng.randint(2, 4))
            since = self.rand_date(date(2019, 1, 1), date(2026, 7, 31))
            self.populate(cid, since)

    # ------------------------------------------------------------------ November events
    def customers_of(self, *profiles: str) -> list[str]:
        return [c["customer_id"] for c in self.customers if self.profile[c["customer_id"]] in profiles]

    def active_on(self, sub: dict[str, str], d: date) -> bool:
        end = sub["end_date"]
        return sub["start_date"] <= d.isoformat() and (not end or end >= d.isoformat())

    def subs_of(self, cid: str, product: str | None = None) -> list[dict[str, str]]:
        return [s for s in self.by_customer[cid] if product is None or s["product"] == product]

    def commitment_end(self, sub: dict[str, str]) -> date | None:
        months = {"ENGAGEMENT_12": 12, "ENGAGEMENT_24": 24, "ENGAGEMENT_36": 36}.get(sub["commitment"])
        if not months:
            return None
        start = date.fromisoformat(sub["commitment_start"] or sub["start_date"])
        end = add_months(start, months)  # exclusive
        end_date = date.fromisoformat(sub["end_date"]) if sub["end_date"] else NOV30
        while end <= end_date:  # tacit renewal by 12 months
            end = add_months(end, 12)
        return end

    def terminate(self, sub: dict[str, str], end: date, why: str) -> None:
        sub["end_date"] = end.isoformat()
        c_end = self.commitment_end(sub)
        fee = (f"within {sub['commitment']} (term ends {c_end - timedelta(days=1)}): termination fee"
               if c_end and end < c_end - timedelta(days=1) else
               f"{sub['commitment'] or 'no commitment'}: no termination fee")
        self.plant(sub["customer_id"], f"{sub['subscription_id']} {sub['product']} ends {end} "
                                       f"({why}); {fee}")

    def november(self) -> None:
        rng = self.rng
        # New customers whose whole contract starts in November, with the welcome offer.
        for i in range(8):
            prof = ["micro", "micro", "sme", "sme", "micro", "sme", "enterprise", "micro"][i]
            cid = self.add_customer(prof)
            for _ in range(2 if prof == "enterprise" else 1):
                self.add_site(cid)
            if prof == "enterprise":
                self.add_accounts(cid, 2)
            day = date(2026, 11, [2, 5, 9, 12, 16, 18, 23, 27][i])
            hq = self.cust_sites[cid][0]
            acc = self.cust_accounts[cid][0] if self.cust_accounts[cid] else ""
            trunk = self.add_sub(cid, "SIP_TRUNK_10" if prof != "enterprise" else "SIP_TRUNK_30",
                                 1, day, hq, acc, "ENGAGEMENT_24")
            if prof != "micro":
                f = self.add_sub(cid, "FTTO_100", 1, day, hq, acc, "ENGAGEMENT_36"
                                 if prof == "enterprise" else "ENGAGEMENT_24")
                self.one_shot(cid, "FTTO_INSTALL", day, hq, acc)
                self.add_sub(cid, "PBX_SEAT", rng.randint(4, 14), day, hq, acc, "ENGAGEMENT_24")
                self.one_shot(cid, "TRAINING", day + timedelta(days=2), hq, acc)
                assert f
            for _ in range(rng.randint(1, 3)):
                self.add_sub(cid, "MOBILE_PRO", 1, day, hq, acc, "ENGAGEMENT_12")
            if prof == "enterprise":
                site2 = self.cust_sites[cid][1]
                self.add_sub(cid, "FTTO_100", 1, day + timedelta(days=7), site2,
                             self.cust_accounts[cid][1], "ENGAGEMENT_36")
                self.one_shot(cid, "FTTO_INSTALL", day + timedelta(days=7), site2,
                              self.cust_accounts[cid][1])
            self.grant(cid, "WELCOME_SIP", day)
            self.plant(cid, f"new customer ({prof}), every subscription starts {day}; "
                            "WELCOME_SIP granted from that day")
            if i == 0:
                self.grant(cid, "MIGRATION_FREE_MONTH", day, trunk["subscription_id"])
                self.plant(cid, f"MIGRATION_FREE_MONTH on {trunk['subscription_id']} "
                                "(first month of the trunk free, stacked after WELCOME_SIP)")

        # Existing customers adding services in November.
        existing = self.customers_of("sme", "enterprise", "large")
        for cid in rng.sample(existing, 14):
            day = self.rand_date(date(2026, 11, 2), date(2026, 11, 28))
            hq = self.cust_sites[cid][0]
            acc = self.cust_accounts[cid][0] if self.cust_accounts[cid] else ""
            choice = rng.choice(["mobile", "mobile", "site", "router"])
            if choice == "mobile":
                for _ in range(rng.randint(1, 4)):
                    self.add_sub(cid, "MOBILE_PRO", 1, day, hq, acc, "ENGAGEMENT_12")
                self.plant(cid, f"new mobile lines from {day} (whole month: proration none)")
            elif choice == "site":
                site = self.add_site(cid)
                self.add_sub(cid, "FTTO_100", 1, day, site, acc, "ENGAGEMENT_24")
                self.one_shot(cid, "FTTO_INSTALL", day, site, acc)
                self.add_sub(cid, "PBX_SEAT", rng.randint(2, 8), day, site, acc, "ENGAGEMENT_24")
                self.plant(cid, f"new site {site} opened {day}: FTTO_100 + PBX_SEAT + FTTO_INSTALL")
            else:
                self.add_sub(cid, "ROUTER_RENTAL", 1, day, hq, acc)
                self.plant(cid, f"ROUTER_RENTAL (quarterly) starts {day}: the Oct-Dec quarter "
                                "started before it, nothing in advance in this run")

        # A fibre link delivered on 25 November: 6 days served, the 15-day minimum applies.
        cid = self.customers_of("sme")[5]
        site = self.add_site(cid, "Dépôt logistique")
        s = self.add_sub(cid, "FTTO_100", 1, date(2026, 11, 25), site, "", "ENGAGEMENT_24")
        self.one_shot(cid, "FTTO_INSTALL", date(2026, 11, 25), site, "",
                      description="(lien de secours)")
        self.plant(cid, f"{s['subscription_id']} FTTO_100 from 2026-11-25: 6 days served, "
                        "FIBRE_MINIMUM counts 15 days")

        # Terminations in November.
        pool = [s for s in self.subs if s["start_date"] < "2026-09-01" and not s["end_date"]
                and s["product"] != "SUPPORT_PREMIUM"]
        with_commit = [s for s in pool if s["commitment"]]
        without = [s for s in pool if not s["commitment"]]
        for sub in rng.sample(with_commit, 16):
            self.terminate(sub, self.rand_date(date(2026, 11, 2), date(2026, 11, 29)),
                           "résiliation")
        for sub in rng.sample(without, 5):
            self.terminate(sub, self.rand_date(date(2026, 11, 2), date(2026, 11, 29)),
                           "résiliation")
        edge = [s for s in with_commit if not s["end_date"] and s["product"] == "FTTO_100"]
        s = edge[0]  # ends on the last day of its commitment: no fee, no renewal
        s["commitment"], s["commitment_start"] = "ENGAGEMENT_24", "2024-11-21"
        s["start_date"] = min(s["start_date"], "2024-11-21")
        self.terminate(s, date(2026, 11, 20), "on the last day of its commitment")
        s = edge[1]
        self.terminate(s, NOV1, "served one day (1 Nov): FIBRE_MINIMUM counts 15 days")
        s = edge[2]
        self.terminate(s, NOV30, "last day of November: no credit, not billed in December")
        # A tacitly renewed 12-month commitment, ended inside its third term.
        s = [x for x in with_commit if not x["end_date"] and x["product"] == "SIP_TRUNK_10"][0]
        s["commitment"], s["commitment_start"] = "ENGAGEMENT_12", "2024-03-15"
        s["start_date"] = min(s["start_date"], "2024-03-15")
        self.terminate(s, date(2026, 11, 12), "ENGAGEMENT_12 tacitly renewed twice")
        # A 36-month fibre commitment ended early: fee capped.
        s = [x for x in self.subs if x["product"] == "FTTO_1G" and x["commitment"] == "ENGAGEMENT_36"
             and not x["end_date"] and x["start_date"] < "2026-01-01"][0]
        s["commitment_start"] = "2025-06-01"
        s["start_date"] = min(s["start_date"], "2025-06-01")
        self.terminate(s, date(2026, 11, 20), "ENGAGEMENT_36 with cap")
        # A re-commitment ("réengagement") at an upgrade: commitment_start after start_date.
        s = [x for x in self.subs if x["product"] == "PBX_SEAT" and x["commitment"] == "ENGAGEMENT_24"
             and not x["end_date"] and x["start_date"] < "2023-01-01"][0]
        s["commitment_start"] = "2025-09-01"
        self.plant(s["customer_id"], f"{s['subscription_id']} PBX_SEAT started {s['start_date']}, "
                                     "re-committed 24 months from 2025-09-01")

        # Terminations scheduled in December, starts in December.
        for sub, end in zip(rng.sample([s for s in pool if not s["end_date"]], 4),
                            ["2026-12-15", "2026-12-31", "2026-12-01", "2026-12-20"], strict=True):
            sub["end_date"] = end
            self.plant(sub["customer_id"], f"{sub['subscription_id']} {sub['product']} ends {end}: "
                                           "active on 1 Dec, billed in advance, regularised in January")
        for cid, product, first in [(self.customers_of("sme")[7], "MOBILE_PRO", "2026-12-01"),
                                  (self.customers_of("sme")[8], "SIP_TRUNK_10", "2026-12-10"),
                                  (self.customers_of("enterprise")[2], "MOBILE_PRO", "2026-12-14")]:
            hq = self.cust_sites[cid][0]
            acc = self.cust_accounts[cid][0] if self.cust_accounts[cid] else ""
            s = self.add_sub(cid, product, 1, date.fromisoformat(first), hq, acc)
            self.plant(cid, f"{s['subscription_id']} {product} starts {first} "
                            + ("(active on the first day: billed in advance)" if first.endswith("01")
                               else "(not active on 1 Dec: nothing in advance, regularised in January)"))

        # A mobile line transferred between two customers (company take-over, "cession de ligne").
        a, b = self.customers_of("sme")[10], self.customers_of("sme")[11]
        line = [s for s in self.subs_of(a, "MOBILE_PRO") if not s["end_date"]]
        if not line:
            line = [self.add_sub(a, "MOBILE_PRO", 1, date(2025, 2, 3), self.cust_sites[a][0])]
        old = line[0]
        old["end_date"], old["commitment"] = "2026-11-15", ""
        self.add_sub(b, "MOBILE_PRO", 1, date(2026, 11, 16), self.cust_sites[b][0], line=old["line_id"])
        self.moved = old
        self.plant(f"{a}->{b}", f"MSISDN {old['line_id']} ends 2026-11-15 at {a}, starts "
                                f"2026-11-16 at {b}: usage goes to the owner at call time")

        self.contract_prices()
        self.quantity_changes()

    def contract_prices(self) -> None:
        rng = self.rng
        cands = [s for s in self.subs if s["product"] in ("SIP_TRUNK_10", "FTTO_1G", "MOBILE_PRO",
                                                          "FTTO_100") and not s["end_date"]]
        prices = {"SIP_TRUNK_10": "39.00", "FTTO_1G": "280.00", "MOBILE_PRO": "14.90",
                  "FTTO_100": "149.00"}
        for s in rng.sample(cands, 7):
            s["unit_price"] = prices[s["product"]]
            self.plant(s["customer_id"], f"{s['subscription_id']} {s['product']}: contract price "
                                         f"{s['unit_price']} (overrides price lists)")
        partners = self.customers_of("sme")[20:22]
        for cid in partners:
            self.customer(cid)["pricelist"] = "PARTNER"
            self.customer(cid)["segment"] = "sme"
            self.plant(cid, "reseller: explicit price list PARTNER (wins over segment sme)")

    def quantity_changes(self) -> None:
        rng = self.rng
        pbx = [s for s in self.subs if s["product"] == "PBX_SEAT" and s["start_date"] < "2026-10-01"
               and not s["end_date"]]
        for s in rng.sample(pbx, 20):
            q = int(s["quantity"])
            new = max(1, q + rng.choice([-3, -2, -1, 1, 2, 3, 5]))
            day = self.rand_date(date(2026, 11, 2), NOV30)
            self.qchanges.append({"subscription_id": s["subscription_id"],
                                  "effective_date": day.isoformat(), "quantity": str(new)})
        planted = [s for s in pbx if not any(q["subscription_id"] == s["subscription_id"]
                                             for q in self.qchanges)]
        sme_pbx = [s for s in planted if self.profile[s["customer_id"]] == "sme"]
        s = sme_pbx[0]  # crosses the PBX_VOLUME threshold in the middle of November
        s["quantity"] = "18"
        self.qchanges.append({"subscription_id": s["subscription_id"], "effective_date": "2026-11-16",
                              "quantity": "22"})
        self.plant(s["customer_id"], f"{s['subscription_id']} PBX_SEAT 18 -> 22 seats on "
                                     "2026-11-16: crosses PBX_VOLUME (>= 20) mid-month")
        s = sme_pbx[1]  # crosses the first graduated tier, twice in the month
        s["quantity"] = "9"
        self.qchanges += [
            {"subscription_id": s["subscription_id"], "effective_date": "2026-11-09", "quantity": "12"},
            {"subscription_id": s["subscription_id"], "effective_date": "2026-11-23", "quantity": "14"},
        ]
        self.plant(s["customer_id"], f"{s['subscription_id']} PBX_SEAT 9 -> 12 (9 Nov) -> 14 "
                                     "(23 Nov): two changes, crosses the 10-seat tier")
        s = sme_pbx[2]
        self.qchanges.append({"subscription_id": s["subscription_id"], "effective_date": "2026-11-20",
                              "quantity": "0"})
        self.plant(s["customer_id"], f"{s['subscription_id']} PBX_SEAT suspended (quantity 0) "
                                     "from 2026-11-20")
        s = sme_pbx[3]
        self.qchanges.append({"subscription_id": s["subscription_id"], "effective_date": "2026-12-01",
                              "quantity": str(int(s["quantity"]) + 4)})
        self.plant(s["customer_id"], f"{s['subscription_id']} PBX_SEAT +4 seats on 2026-12-01: "
                                     "December in advance uses the new quantity")
        big = sorted((s for s in planted if self.profile[s["customer_id"]] == "large"),
                     key=lambda s: (-int(s["quantity"]), s["subscription_id"]))
        s = big[0]
        s["quantity"] = "185"
        self.qchanges.append({"subscription_id": s["subscription_id"], "effective_date": "2026-11-10",
                              "quantity": "212"})
        self.plant(s["customer_id"], f"{s['subscription_id']} PBX_SEAT 185 -> 212 on 2026-11-10: "
                                     "crosses the 200-seat tier of ENTERPRISE_2026")
        s = [x for x in self.subs if x["product"] == "SIP_TRUNK_30" and not x["end_date"]
             and x["start_date"] < "2026-10-01"][0]
        self.qchanges.append({"subscription_id": s["subscription_id"], "effective_date": "2026-11-06",
                              "quantity": "2"})
        self.plant(s["customer_id"], f"{s['subscription_id']} SIP_TRUNK_30 1 -> 2 trunks on 2026-11-06")

    # ------------------------------------------------------------------ one-shots and grants
    def one_shot(self, cid: str, product: str, day: date, site: str = "", account: str = "",
                 quantity: int = 1, unit_price: str = "", description: str = "") -> None:
        self.one_shots.append({
            "charge_id": f"OS{len(self.one_shots) + 1:05d}", "customer_id": cid, "product": product,
            "date": day.isoformat(), "quantity": str(quantity), "unit_price": unit_price,
            "description": description, "site_id": site, "account_id": account,
        })

    def grant(self, cid: str, discount: str, start: date, sub: str = "") -> None:
        self.grants.append({"grant_id": f"G{len(self.grants) + 1:04d}", "customer_id": cid,
                            "discount": discount, "start_date": start.isoformat(),
                            "subscription_id": sub})

    def extras(self) -> None:
        rng = self.rng
        # Router sales and training, November.
        for cid in rng.sample(self.customers_of("micro", "sme"), 10):
            day = self.rand_date(date(2026, 11, 2), date(2026, 11, 27))
            self.one_shot(cid, "ROUTER_SALE", day, self.cust_sites[cid][0],
                          quantity=rng.choice([1, 1, 1, 2]))
        for cid in self.customers_of("eu_sme")[:1] + self.customers_of("ch"):
            self.one_shot(cid, "ROUTER_SALE", date(2026, 11, 17), self.cust_sites[cid][0])
            self.plant(cid, f"foreign customer ({self.customer(cid)['country']}) with a router sale "
                            "in November: reverse charge (EU) or export (non-EU)")
        for cid in rng.sample(self.customers_of("enterprise"), 3):
            self.one_shot(cid, "TRAINING", self.rand_date(date(2026, 11, 3), date(2026, 11, 27)),
                          self.cust_sites[cid][0], self.cust_accounts[cid][0], quantity=2)
        cid = self.customers_of("sme")[2]
        self.one_shot(cid, "FTTO_INSTALL", date(2026, 11, 19), self.cust_sites[cid][0],
                      unit_price="0.00", description="(frais offerts, geste commercial)")
        self.plant(cid, "FTTO_INSTALL at unit_price 0.00 (waived installation fee)")
        cid = self.customers_of("sme")[3]
        self.one_shot(cid, "ROUTER_SALE", date(2026, 10, 31), self.cust_sites[cid][0])
        self.one_shot(cid, "ROUTER_SALE", DEC1, self.cust_sites[cid][0])
        self.plant(cid, "ROUTER_SALE dated 2026-10-31 (November run) and 2026-12-01 (January "
                        "run): neither is on the December invoice")

        # Discount grants.
        newish = [s for s in self.subs if s["product"] in ("SIP_TRUNK_10", "SIP_TRUNK_30")
                  and "2026-08-01" <= s["start_date"] < "2026-11-01"]
        for s in newish:
            self.grant(s["customer_id"], "WELCOME_SIP", date.fromisoformat(s["start_date"]))
            self.plant(s["customer_id"], f"WELCOME_SIP from {s['start_date']} "
                                         f"({s['subscription_id']})")
        expired = [s for s in self.subs if s["product"] == "SIP_TRUNK_10"
                   and "2026-01-01" <= s["start_date"] < "2026-07-01"][0]
        self.grant(expired["customer_id"], "WELCOME_SIP", date(2026, 7, 20))
        self.plant(expired["customer_id"], "WELCOME_SIP granted 2026-07-20: expired on 2026-10-19,"
                                           " must not appear on the December invoice")
        for cid in rng.sample(self.customers_of("sme", "enterprise"), 3):
            self.grant(cid, "GESTE_CO_50", DEC1)
            self.plant(cid, "GESTE_CO_50 from 2026-12-01 (invoice-level fixed discount)"
                       + (f"; {len(self.cust_sites[cid])} sites" if len(self.cust_sites[cid]) > 1
                          else ""))
        small = [c for c in self.customers_of("micro")
                 if [s["product"] for s in self.by_customer[c]] == ["MOBILE_PRO"]][0]
        self.grant(small, "GESTE_CO_50", date(2026, 11, 20))
        self.plant(small, "GESTE_CO_50 on an invoice smaller than 50 EUR (a single mobile line): "
                          "must stop at zero")
        migrated = [s for s in self.subs if s["start_date"] >= "2026-11-02"
                    and s["product"] in ("FTTO_100", "MOBILE_PRO") and not s["end_date"]][:3]
        for s in migrated:
            self.grant(s["customer_id"], "MIGRATION_FREE_MONTH", date.fromisoformat(s["start_date"]),
                       s["subscription_id"])
            self.plant(s["customer_id"], f"MIGRATION_FREE_MONTH on {s['subscription_id']} "
                                         f"{s['product']} from {s['start_date']}")
        # Minimum spend: a 36-month commitment on a customer with little telephony.
        trunks = [s for s in self.subs if s["product"] == "SIP_TRUNK_10" and not s["end_date"]
                  and not s["unit_price"] and self.profile[s["customer_id"]] == "sme"
                  and len(self.subs_of(s["customer_id"], "SIP_TRUNK_10")) == 1
                  and not self.subs_of(s["customer_id"], "PBX_SEAT")]
        s = trunks[len(trunks) // 2]
        cid = s["customer_id"]
        s["commitment"] = "ENGAGEMENT_36"
        self.plant(cid, f"{s['subscription_id']} SIP_TRUNK_10 under ENGAGEMENT_36: voice spend "
                        "below the 250 EUR minimum, true-up line expected")
        # A service with no site, and an enterprise subscription with no billing account.
        ent = self.customers_of("enterprise")[4]
        s = self.add_sub(ent, "SUPPORT_PREMIUM", 1, date(2025, 1, 1), "", "", "ENGAGEMENT_12")
        self.plant(ent, f"{s['subscription_id']} SUPPORT_PREMIUM with neither site nor account")
        ent = self.customers_of("enterprise")[6]
        self.customer(ent)["segment"] = ""
        self.plant(ent, f"enterprise-size customer without segment: list prices, invoices by site "
                        f"({len(self.cust_sites[ent])} sites)")
        ent = [c for c in self.customers_of("enterprise")
               if self.customer(c)["segment"] == "enterprise"][1]
        s = self.subs_of(ent, "MOBILE_PRO")[0]
        s["account_id"] = ""
        self.plant(ent, f"{s['subscription_id']} MOBILE_PRO of an enterprise customer with no "
                        "billing account (group by account)")
        be = [c for c in self.customers if c["country"] == "BE"][1]
        be["vat_number"] = ""
        self.plant(be["customer_id"], "BE customer without VAT number: no reverse charge under "
                                      "the current rule (French VAT applies)")

    # ------------------------------------------------------------------ usage
    def call_time(self, lo: date, hi: date) -> datetime:
        rng = self.rng
        days = [lo + timedelta(days=i) for i in range((hi - lo).days + 1)]
        weights = [0.3 if d in HOLIDAYS else 0.25 if d.weekday() >= 5 else 1.0 for d in days]
        day = rng.choices(days, weights)[0]
        hour = rng.choices(range(24), HOURS)[0]
        return datetime(day.year, day.month, day.day, hour, rng.randint(0, 59), rng.randint(0, 59),
                        tzinfo=CET)

    def window(self, sub: dict[str, str]) -> tuple[date, date] | None:
        lo = max(NOV1, date.fromisoformat(sub["start_date"]))
        hi = min(NOV30, date.fromisoformat(sub["end_date"])) if sub["end_date"] else NOV30
        return (lo, hi) if lo <= hi else None

    def destination(self, kind: str, national_ok: bool = True) -> str:
        rng = self.rng

        def digits(n: int) -> str:
            return "".join(rng.choice("0123456789") for _ in range(n))

        fr = {"fr_fixed": lambda: str(rng.randint(1, 5)) + digits(8),
              "fr_voip": lambda: "9" + rng.choice("5678") + digits(7),
              "fr_mobile": lambda: rng.choice(["6" + digits(8), "7" + str(rng.randint(3, 8)) + digits(7)]),
              "fr_special": lambda: "8" + rng.choice(["10", "20", "21", "25"]) + digits(6),
              "fr_free": lambda: "80" + rng.choice("012345") + digits(6),
              "fr_premium": lambda: "89" + rng.choice("1279") + digits(6)}
        if kind in fr:
            national = fr[kind]()
            r = rng.random()
            if national_ok and (r < 0.2 or kind in ("fr_special", "fr_free", "fr_premium")):
                return "0" + national
            return ("0033" if r > 0.93 else "+33") + national
        e164 = {
            "fr_dom": lambda: rng.choice(["262262", "262692", "590590", "596596", "594594"]) + digits(6),
            "eu": lambda: rng.choice([
                "322" + digits(7), "3247" + digits(7), "3230" + digits(6), "4930" + digits(8),
                "4989" + digits(7), "4917" + digits(8), "4915" + digits(9), "3491" + digits(7),
                "346" + digits(8), "3902" + digits(8), "393" + digits(9), "3120" + digits(7),
                "316" + digits(8), "35121" + digits(7), "3519" + digits(8), "352" + digits(6),
                "431" + digits(7), "3222" + digits(6), "4822" + digits(7), "3531" + digits(7),
                "4021" + digits(7), "4202" + digits(8), "468" + digits(7), "3589" + digits(7)]),
            "europe_other": lambda: rng.choice([
                "4420" + digits(8), "447" + rng.choice("1234589") + digits(8), "4470" + digits(8),
                "4122" + digits(7), "417" + rng.choice("6789") + digits(7), "4722" + digits(6)]),
            "nanp": lambda: rng.choice(["1212", "1415", "1514", "1438", "1617", "1305", "1876",
                                        "1809"]) + digits(7),
            "row": lambda: rng.choice(["2125", "2126", "2167", "2135", "2217", "8610", "8621",
                                       "813", "5511", "9122", "6129", "9021", "97254", "7495",
                                       "2348", "2010"]) + digits(7),
            "satellite": lambda: "8707" + digits(8),
            "unallocated": lambda: "999" + digits(7),
        }[kind]()
        return ("00" if rng.random() < 0.1 else "+") + e164

    def duration(self) -> int:
        if self.rng.random() < 0.08:
            return 0
        return max(1, min(7200, int(self.rng.lognormvariate(4.3, 1.1))))

    def record(self, line: str, product: str, when: datetime | str, qty: int, dest: str) -> None:
        stamp = when if isinstance(when, str) else when.isoformat()
        self.usage.append({"record_id": "", "line_id": line, "product": product,
                           "start_time": stamp, "quantity": str(qty), "destination": dest})

    def calls(self) -> None:
        rng = self.rng
        kinds, kweights = [k for _, k in ZONE_MIX], [w for w, _ in ZONE_MIX]
        fixed = [s for s in self.subs if s["product"] in ("SIP_TRUNK_10", "SIP_TRUNK_30", "PBX_SEAT")
                 and self.window(s)]
        weights = [min(20.0, rng.paretovariate(1.6)) * (int(s["quantity"]) ** 0.5 + 1) for s in fixed]
        for _ in range(3600):
            s = rng.choices(fixed, weights)[0]
            lo, hi = self.window(s)  # type: ignore[misc]
            self.record(s["line_id"], "VOICE_FIXED", self.call_time(lo, hi), self.duration(),
                        self.destination(rng.choices(kinds, kweights)[0]))
        mobiles = [s for s in self.subs if s["product"] == "MOBILE_PRO" and self.window(s)]
        mweights = [min(10.0, rng.paretovariate(2.0)) for _ in mobiles]
        mkinds = kinds  # mobiles call mobiles twice as often
        mkw = [w * 2 if k == "fr_mobile" else w for k, w in zip(kinds, kweights, strict=True)]
        for _ in range(1300):
            s = rng.choices(mobiles, mweights)[0]
            lo, hi = self.window(s)  # type: ignore[misc]
            self.record(s["line_id"], "MOBILE_VOICE", self.call_time(lo, hi), self.duration(),
                        self.destination(rng.choices(mkinds, mkw)[0]))
        # Heavy mobile users: one above the 99 h allowance, one above the 40 h fair-use flag.
        steady = [s for s in mobiles if s["start_date"] < "2026-10-01" and not s["end_date"]]
        heavy, flagged = steady[3], steady[40]
        for _ in range(125):
            self.record(heavy["line_id"], "MOBILE_VOICE", self.call_time(NOV1, NOV30),
                        rng.randint(2400, 3600), self.destination(rng.choice(["fr_mobile", "fr_fixed"])))
        for _ in range(60):
            self.record(flagged["line_id"], "MOBILE_VOICE", self.call_time(NOV1, NOV30),
                        rng.randint(2500, 2900), self.destination("fr_mobile"))
        self.plant(heavy["customer_id"], f"mobile {heavy['line_id']}: ~104 h of French calls, "
                                         "above the 99 h allowance (overage billed)")
        self.plant(flagged["customer_id"], f"mobile {flagged['line_id']}: ~45 h of French calls: "
                                           "fair-use flag (40 h), still within the allowance")
        sat = steady[7]
        self.record(sat["line_id"], "MOBILE_VOICE", "2026-11-18T10:42:00+01:00", 733,
                    "+870773112233")
        self.plant(sat["customer_id"], f"mobile {sat['line_id']}: 12 min satellite call on "
                                       "2026-11-18 (733 s at 9.90 EUR/min = 120.95 EUR, capped at 50 EUR per call)")

        # Time-zone and period edges on one trunk.
        t = [s for s in fixed if s["product"] == "SIP_TRUNK_10" and s["start_date"] < "2026-10-01"
             and not s["end_date"]][2]
        for stamp, _expected in [("2026-10-31T23:59:30+01:00", "out (October)"),
                            ("2026-10-31T23:30:00Z", "in (1 Nov 00:30 Paris)"),
                            ("2026-11-15 10:12:00", "in (no offset: Paris time)"),
                            ("2026-11-30T23:59:59+01:00", "in (last second)"),
                            ("2026-11-30T23:30:00Z", "out (1 Dec 00:30 Paris)"),
                            ("2026-12-01T00:00:05+01:00", "out (December)")]:
            self.record(t["line_id"], "VOICE_FIXED", stamp, 95, "+33478112233")
        self.plant(t["customer_id"], f"trunk {t['line_id']}: 6 calls at the period edges "
                                     "(October, UTC offsets, no offset, December): 3 in November")
        # Calls to an unallocated code (rejected), on regular lines.
        for s in rng.sample(fixed, 4):
            lo, hi = self.window(s)  # type: ignore[misc]
            self.record(s["line_id"], "VOICE_FIXED", self.call_time(lo, hi), 42,
                        self.destination("unallocated"))
            self.plant(s["customer_id"], f"{s['line_id']}: call to +999 (zone UNALLOCATED, no "
                                         "price): rejected record")
        # Phantom trunk: traffic from a line with no subscription ("trunk fantôme").
        for _ in range(25):
            self.record("TRK09999", "VOICE_FIXED", self.call_time(NOV1, NOV30), self.duration(),
                        self.destination("fr_fixed"))
        self.plant("-", "line TRK09999: 25 calls, no subscription (phantom trunk anomaly)")
        # Traffic after a termination and before an activation.
        candidates = [s for s in fixed if s["end_date"] and "2026-11-02" <= s["end_date"] < "2026-11-25"]
        if not candidates:
            candidates = [s for s in fixed if not s["end_date"] and s["start_date"] < "2026-10-01"][-1:]
            self.terminate(candidates[0], date(2026, 11, 12), "résiliation")
        ended = candidates[0]
        end = date.fromisoformat(ended["end_date"])
        for i in range(5):
            self.record(ended["line_id"], "VOICE_FIXED",
                        self.call_time(end + timedelta(days=2 + i), end + timedelta(days=2 + i)),
                        self.duration() + 10, self.destination("fr_fixed"))
        self.plant(ended["customer_id"], f"{ended['line_id']} ended {ended['end_date']}: 5 calls "
                                         "after the end (no active subscription)")
        new = [s for s in fixed if s["start_date"] >= "2026-11-05" and s["product"] == "SIP_TRUNK_10"][0]
        start = date.fromisoformat(new["start_date"])
        for i in (1, 2, 3):
            self.record(new["line_id"], "VOICE_FIXED",
                        self.call_time(start - timedelta(days=i), start - timedelta(days=i)),
                        30 + i, self.destination("fr_fixed"))
        self.plant(new["customer_id"], f"{new['line_id']} starts {new['start_date']}: 3 test calls "
                                       "the days before (no active subscription)")
        # Calls on a transferred MSISDN, both sides of the transfer.
        moved = self.moved
        for stamp in ("2026-11-14T09:15:00+01:00", "2026-11-15T18:01:00+01:00",
                      "2026-11-16T08:30:00+01:00", "2026-11-20T11:00:00+01:00"):
            self.record(moved["line_id"], "MOBILE_VOICE", stamp, 240, "+33472000000")

    def sms_and_data(self) -> None:
        rng = self.rng
        mobiles = [s for s in self.subs if s["product"] == "MOBILE_PRO" and self.window(s)]
        for _ in range(380):
            s = rng.choice(mobiles)
            lo, hi = self.window(s)  # type: ignore[misc]
            kind = rng.choice(["eu", "eu", "europe_other", "nanp", "row"])
            self.record(s["line_id"], "MOBILE_SMS", self.call_time(lo, hi),
                        rng.choices([1, 2, 3], [85, 12, 3])[0], self.destination(kind))
        bulk = mobiles[11]
        self.record(bulk["line_id"], "MOBILE_SMS", "2026-11-24T09:00:00+01:00", 250, "")
        self.plant(bulk["customer_id"], f"mobile {bulk['line_id']}: one record of 250 SMS (campaign)")
        users = rng.sample(mobiles, 70)
        specials = {0: 23_500_000_000, 1: 41_200_000_000, 2: 20_500_000_000}
        for i, s in enumerate(users):
            lo, hi = self.window(s)  # type: ignore[misc]
            n = rng.randint(6, 14)
            total = specials.get(i, int(rng.uniform(0.3, 14) * 1e9))
            cuts = sorted(rng.random() for _ in range(n - 1))
            parts = [b - a for a, b in zip([0.0] + cuts, cuts + [1.0], strict=True)]
            amounts = [int(total * p) for p in parts]
            amounts[-1] += total - sum(amounts)
            for amount in amounts:
                self.record(s["line_id"], "MOBILE_DATA", self.call_time(lo, hi), amount, "")
            if i in specials:
                self.plant(s["customer_id"], f"mobile {s['line_id']}: {total:,} bytes of data in "
                           "November" + (" (over 20 GB decimal, under 20 GiB: settles the unit)"
                                         if i == 2 else " (over the 20 GB included)"))

    # ------------------------------------------------------------------ output
    def finish(self) -> None:
        def utc_key(r: dict[str, str]) -> tuple[str, str, str, str]:
            stamp = r["start_time"]
            if stamp.endswith("Z") or stamp[-6] in "+-":
                dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            else:
                dt = datetime.fromisoformat(stamp).replace(tzinfo=CET)
            return (dt.astimezone(UTC).isoformat(), r["line_id"], r["product"],
                    r["quantity"] + r["destination"])

        self.usage.sort(key=utc_key)
        prefix = {"VOICE_FIXED": "V", "MOBILE_VOICE": "M", "MOBILE_SMS": "S", "MOBILE_DATA": "D"}
        for i, r in enumerate(self.usage, start=1):
            r["record_id"] = f"{prefix[r['product']]}{i:07d}"

    def write(self, out: Path) -> dict[str, int]:
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "customers": (self.customers, "customer_id"),
            "sites": (self.sites, "site_id"),
            "accounts": (self.accounts, "account_id"),
            "subscriptions": (self.subs, "subscription_id"),
            "quantity_changes": (self.qchanges, "subscription_id"),
            "one_shots": (self.one_shots, "charge_id"),
            "usage": (self.usage, "record_id"),
            "discounts": (self.grants, "grant_id"),
        }
        counts = {}
        for name, (unsorted, key) in files.items():

            def order(r: dict[str, str], k: str = key) -> tuple[str, str]:
                return (r[k], r.get("effective_date", ""))

            rows = sorted(unsorted, key=order)
            if name == "usage":  # chronological, as a switch exports them
                rows = sorted(rows, key=lambda r: int(r["record_id"][1:]))
            with open(out / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
                w.writeheader()
                w.writerows(rows)
            counts[name] = len(rows)
        return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "acme-data")
    args = ap.parse_args()
    s = Sample()
    s.build()
    s.november()
    s.extras()
    s.calls()
    s.sms_and_data()
    s.finish()
    counts = s.write(args.out)
    for name, n in counts.items():
        print(f"{name:17} {n:6} rows")
    print("\nplanted cases:")
    for who, what in s.planted:
        print(f"  {who:12} {what}")


if __name__ == "__main__":
    main()
