"""Deterministic seed data.  Same seed and sizes -> byte-identical account.

Timestamps are fixed in the past (2022-01-01 .. 2024-12-31), independent of
the wall clock.  Ids: see schema.ID_BASE.
"""

import random

from . import schema as S

T_START = 1640995200000   # 2022-01-01T00:00:00Z
T_END = 1735603200000     # 2024-12-31T00:00:00Z
DAY = 86400000

FIRST = ('Ava', 'Liam', 'Maria', 'Noah', 'Sofia', 'Lucas', 'Emma', 'Mateo', 'Olivia',
         'Ethan', 'Amara', 'Kenji', 'Priya', 'Omar', 'Chloé', 'Jonas', 'Ingrid', 'Diego',
         'Hannah', 'Tariq', 'Mei', 'Samuel', 'Zoë', 'Rafael', 'Leila', 'Anders', 'Nia',
         'Viktor', 'Isabel', 'Arjun', 'Grace', 'Mohammed', 'Elena', 'Tomás', 'Yuki',
         'Daniel', 'Aisha', 'Felix', 'Clara', 'Kwame', 'Sara', 'Oscar', 'Lina', 'Hugo',
         'Nora', 'Ibrahim', 'Julia', 'Marco', 'Ana', 'Theo')
LAST = ('Smith', 'García', 'Müller', 'Johnson', 'Rossi', 'Nguyen', 'Kim', 'Okafor',
        'Silva', 'Novak', 'Andersson', 'Brown', 'Dubois', 'Patel', 'Kowalski', 'Tanaka',
        'Hernández', 'Jensen', 'Cohen', 'Mensah', 'Martin', 'Ivanova', 'Haddad', 'Walsh',
        "O'Brien", 'Fischer', 'Costa', 'Larsen', 'Schmidt', 'Lopez', 'Chen', 'Singh',
        'Nakamura', 'Petrov', 'Moreau', 'Evans', 'Rahman', 'Berg', 'Santos', 'Wright')
TITLES = ('CEO', 'CTO', 'VP of Sales', 'Head of Marketing', 'Account Executive',
          'Sales Manager', 'Software Engineer', 'Product Manager', 'Operations Manager',
          'CFO', 'Procurement Lead', 'Customer Success Manager', 'IT Director',
          'Marketing Coordinator', 'Office Manager', 'Data Analyst', 'HR Business Partner',
          'Founder', 'Chief of Staff', 'Solutions Architect')
CITIES = (('Boston', 'United States'), ('Austin', 'United States'),
          ('San Francisco', 'United States'), ('New York', 'United States'),
          ('Toronto', 'Canada'), ('London', 'United Kingdom'), ('Dublin', 'Ireland'),
          ('Berlin', 'Germany'), ('Munich', 'Germany'), ('Paris', 'France'),
          ('Amsterdam', 'Netherlands'), ('Stockholm', 'Sweden'), ('Madrid', 'Spain'),
          ('Lisbon', 'Portugal'), ('Warsaw', 'Poland'), ('Singapore', 'Singapore'),
          ('Sydney', 'Australia'), ('Tokyo', 'Japan'), ('Lagos', 'Nigeria'),
          ('São Paulo', 'Brazil'))
CO_WORDS = ('Acme', 'Northwind', 'Bluebird', 'Summit', 'Evergreen', 'Lighthouse',
            'Ironclad', 'Silverline', 'Brightpath', 'Redwood', 'Cobalt', 'Harbor',
            'Quantum', 'Maple', 'Falcon', 'Granite', 'Aurora', 'Pinnacle', 'Cedar',
            'Horizon', 'Nimbus', 'Orchid', 'Vertex', 'Atlas', 'Juniper', 'Beacon',
            'Crescent', 'Meridian', 'Sparrow', 'Tidewater')
CO_KINDS = ('Labs', 'Systems', 'Analytics', 'Logistics', 'Health', 'Foods', 'Media',
            'Software', 'Partners', 'Robotics', 'Energy', 'Financial', 'Studios',
            'Networks', 'Supply')
CO_SUFFIX = ('Inc.', 'LLC', 'GmbH', 'Ltd', 'Co.', 'Group', 'AG', 'SA', '', '')
TLDS = ('com', 'io', 'co', 'net', 'de', 'co.uk', 'fr', 'com.au')
PRODUCTS = ('Annual subscription', 'Enterprise plan', 'Pilot', 'Expansion', 'Renewal',
            'Onboarding package', 'Support contract', 'Team licences', 'Consulting',
            'Data migration')
TICKET_SUBJECTS = ('Cannot log in', 'Invoice shows wrong amount', 'Export to CSV fails',
                   'Feature request: dark mode', 'API returns 500 on save',
                   'How do I add a user?', 'Password reset email not received',
                   'Slow dashboard loading', 'Duplicate records after import',
                   'Integration stopped syncing', 'Refund request',
                   'Report totals do not match')
LIFECYCLE_W = ('subscriber', 'lead', 'lead', 'lead', 'marketingqualifiedlead',
               'salesqualifiedlead', 'opportunity', 'customer', 'customer', 'evangelist')
LEAD_STATUS = [o[0] for o in S.LEAD_STATUS]
COLORS = ('red', 'green', 'blue', 'yellow', 'purple')
INDUSTRY = [i[0] for i in S.INDUSTRIES]
OWNERS = S.ACTIVE_OWNER_IDS
PRIORITY = ('LOW', 'MEDIUM', 'HIGH', 'URGENT')
CATEGORY = ('PRODUCT_ISSUE', 'BILLING_ISSUE', 'FEATURE_REQUEST', 'GENERAL_INQUIRY')
DEMO_SIZES = {'contacts': 50, 'companies': 15, 'deals': 30, 'tickets': 10}

_ASCII = str.maketrans({'é': 'e', 'ë': 'e', 'á': 'a', 'ã': 'a', 'í': 'i', 'ó': 'o',
                        'ú': 'u', 'ü': 'u', 'ñ': 'n', 'ç': 'c', "'": '', ' ': ''})


def _slug(s):
    return s.lower().translate(_ASCII)


def _times(rnd, i, n):
    """Deterministic (created, updated) ms for record i of n, ascending in i."""
    span = T_END - T_START
    step = span // max(n, 1)
    c = T_START + step * i + int(rnd() * max(step, 1))
    c = min(c, T_END - 1)
    u = c + int(rnd() * (T_END - c))
    return c, u


def seed(store, seed=1, contacts=0, companies=0, deals=0, tickets=0, demo=False):
    """Fill an empty store.  Fast: plain loops, one small dict per record."""
    rng = random.Random(seed)
    rnd = rng.random
    owners = OWNERS
    # ---- companies
    co_ids = []
    co_names = []
    co_domains = []
    used_domains = set()
    for i in range(companies):
        w = CO_WORDS[i % len(CO_WORDS)] if demo else rng.choice(CO_WORDS)
        kind = rng.choice(CO_KINDS)
        name = '%s %s' % (w, kind)
        suffix = rng.choice(CO_SUFFIX)
        full = name + (' ' + suffix if suffix else '')
        dom = '%s%s.%s' % (_slug(w), _slug(kind), rng.choice(TLDS))
        if dom in used_domains:
            dom = '%s%s%d.%s' % (_slug(w), _slug(kind), i, rng.choice(TLDS))
        used_domains.add(dom)
        city, country = rng.choice(CITIES)
        c, u = _times(rnd, i, companies)
        props = {'name': full, 'domain': dom, 'website': 'https://www.' + dom,
                 'industry': rng.choice(INDUSTRY), 'city': city, 'country': country,
                 'phone': '+1 %03d %03d %04d' % (rng.randrange(200, 999),
                                                 rng.randrange(100, 999),
                                                 rng.randrange(0, 9999)),
                 'numberofemployees': str(rng.choice((5, 12, 25, 50, 120, 250, 800,
                                                      1500, 5000))),
                 'annualrevenue': str(rng.randrange(1, 500) * 100000),
                 'lifecyclestage': rng.choice(('lead', 'opportunity', 'customer',
                                               'customer')),
                 'hubspot_owner_id': rng.choice(owners)}
        r = rng.random()
        if r < 0.4:
            props['tier'] = rng.choice(('gold', 'silver', 'bronze'))
        if r < 0.2:
            props['type'] = rng.choice(('PROSPECT', 'PARTNER', 'RESELLER'))
        co_ids.append(store.seed_record('companies', props, c, u))
        co_names.append(full)
        co_domains.append(dom)
    # ---- contacts
    ct_ids = []
    ct_company = []          # index into co_ids or -1
    by_company = {}
    emails = store.emails
    nf, nl = len(FIRST), len(LAST)
    for i in range(contacts):
        first = FIRST[int(rnd() * nf)]
        last = LAST[int(rnd() * nl)]
        if companies:
            ci = int(rnd() * companies)
            dom = co_domains[ci]
        else:
            ci = -1
            dom = 'example.%s' % TLDS[i % len(TLDS)]
        local = '%s.%s' % (_slug(first), _slug(last))
        email = '%s@%s' % (local, dom)
        if email in emails:
            email = '%s%d@%s' % (local, i, dom)
        c, u = _times(rnd, i, contacts)
        city, country = CITIES[int(rnd() * len(CITIES))]
        props = {'email': email, 'firstname': first, 'lastname': last,
                 'phone': '+1 617 %03d %04d' % (200 + int(rnd() * 799), i % 10000),
                 'jobtitle': TITLES[int(rnd() * len(TITLES))],
                 'lifecyclestage': LIFECYCLE_W[int(rnd() * len(LIFECYCLE_W))],
                 'hubspot_owner_id': owners[int(rnd() * len(owners))],
                 'city': city, 'country': country}
        if ci >= 0:
            props['company'] = co_names[ci]
        r = rnd()
        if r < 0.5:
            props['hs_lead_status'] = LEAD_STATUS[int(rnd() * len(LEAD_STATUS))]
        if r < 0.3:
            props['favorite_color'] = COLORS[int(rnd() * len(COLORS))]
        if r < 0.25:
            props['nps_score'] = str(int(rnd() * 11))
        if r < 0.1:
            props['vip'] = 'true'
        rid = store.seed_record('contacts', props, c, u)
        ct_ids.append(rid)
        ct_company.append(ci)
        if ci >= 0:
            by_company.setdefault(ci, []).append(rid)
            store.seed_assoc('contacts', rid, 'companies', co_ids[ci], (1, 279))
    # ---- deals
    stages_default = S.STAGES['deals']['default']
    stages_renew = S.STAGES['deals']['7421055']
    for i in range(deals):
        c, u = _times(rnd, i, deals)
        if companies:
            ci = rng.randrange(companies)
        else:
            ci = -1
        renewal = rng.random() < 0.15
        props = {'dealname': '%s - %s' % (co_names[ci] if ci >= 0 else 'Direct',
                                          rng.choice(PRODUCTS)),
                 'amount': str(rng.randrange(5, 400) * 250),
                 'pipeline': '7421055' if renewal else 'default',
                 'dealstage': rng.choice(stages_renew if renewal else stages_default),
                 'closedate': _iso_day(c + rng.randrange(7, 180) * DAY),
                 'hubspot_owner_id': owners[rng.randrange(len(owners))],
                 'dealtype': 'existingbusiness' if renewal else rng.choice(
                     ('newbusiness', 'newbusiness', 'existingbusiness'))}
        if rng.random() < 0.3:
            props['hs_priority'] = rng.choice(('low', 'medium', 'high'))
        rid = store.seed_record('deals', props, c, u)
        if ci >= 0:
            store.seed_assoc('deals', rid, 'companies', co_ids[ci], (5, 341))
        pool = by_company.get(ci) if ci >= 0 else None
        if not pool:
            pool = ct_ids
        if pool:
            k = rng.randint(1, 3)
            picked = set()
            for _ in range(k):
                picked.add(pool[rng.randrange(len(pool))])
            for cid in sorted(picked):
                store.seed_assoc('deals', rid, 'contacts', cid, (3,))
    # ---- tickets
    for i in range(tickets):
        c, u = _times(rnd, i, tickets)
        subj = rng.choice(TICKET_SUBJECTS)
        props = {'subject': subj,
                 'content': 'Reported by the customer: "%s". Steps to reproduce and '
                            'screenshots attached.' % subj,
                 'hs_pipeline': '0', 'hs_pipeline_stage': rng.choice(('1', '2', '3', '4')),
                 'hs_ticket_priority': rng.choice(PRIORITY),
                 'hs_ticket_category': rng.choice(CATEGORY),
                 'hubspot_owner_id': owners[rng.randrange(len(owners))],
                 'source_type': rng.choice(('EMAIL', 'CHAT', 'PHONE', 'FORM'))}
        if rng.random() < 0.1:
            props['escalated'] = 'true'
        rid = store.seed_record('tickets', props, c, u)
        if ct_ids:
            store.seed_assoc('tickets', rid, 'contacts',
                             ct_ids[rng.randrange(len(ct_ids))], (16,))
    # seeded timestamps are in the past; writes must still tick forward
    return {t: store.count(t) for t in S.TYPES}


def _iso_day(ms):
    from .util import iso_ms
    return iso_ms(ms - ms % DAY)
