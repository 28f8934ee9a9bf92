"""Deterministic seed data.  Same seed and sizes -> byte-identical account.

Timestamps are fixed in the past (2022-01-01 .. 2024-12-31), independent of
the wall clock.  Ids: see schema.ID_BASE.
"""

import random

from . import schema as S
from .util import dumps, iso_ms

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


# ---------------------------------------------------------------- the other types
#
# Seeded after the core four with a separate random stream, so adding them
# never changes the core records.  Their record ids follow the per-type
# ranges of schema.ID_BASE: standard type 0-N starts at N x 1,000,000
# (notes 46000001, line items 8000001), custom object k at
# (2000 + k) x 1,000,000 (the first, cars, at 2001000001).

DEMO_OBJECTS = {
    'users': 7, 'products': 12, 'quote_templates': 2, 'discounts': 3, 'fees': 2,
    'taxes': 2, 'line_items': 60, 'quotes': 10, 'leads': 12, 'notes': 120, 'calls': 60,
    'emails': 40, 'meetings': 30, 'tasks': 50, 'communications': 15, 'postal_mail': 5,
    'feedback_submissions': 10, 'invoices': 8, 'orders': 6, 'carts': 4,
    'subscriptions': 5, 'commerce_payments': 5, 'goal_targets': 6, 'services': 5,
    'courses': 4, 'listings': 6, 'appointments': 6, 'projects': 5, 'contracts': 3,
    'cars': 20, 'p_contracts': 8,
}

PRODUCT_CATALOG = (
    ('Cloud Suite Starter', 'CS-START', 1200, 'P12M'),
    ('Cloud Suite Professional', 'CS-PRO', 4800, 'P12M'),
    ('Cloud Suite Enterprise', 'CS-ENT', 18000, 'P12M'),
    ('Analytics Add-on', 'AN-ADD', 2400, 'P12M'),
    ('Premium Support', 'SUP-PREM', 3000, 'P12M'),
    ('Onboarding Package', 'SRV-ONB', 2500, None),
    ('Data Migration Service', 'SRV-MIG', 4000, None),
    ('Training Workshop (1 day)', 'SRV-TRN', 1500, None),
    ('API Access Pack', 'API-PACK', 900, 'P1M'),
    ('Extra Seats (10)', 'SEATS-10', 600, 'P1M'),
    ('Security Compliance Pack', 'SEC-PACK', 3600, 'P12M'),
    ('Custom Integration', 'SRV-INT', 8000, None))
COMPETITORS = ('Zendeck', 'PipeWorks CRM', 'Salesforge', 'Closely', 'CopperLeaf Cloud')
_WRAP = '<div style="" dir="auto" data-top-level="true">%s</div>'
NOTE_TEXTS = (
    '<p style="margin:0;">Call with {first}: {company} is evaluating {product}. Their main '
    'competitor shortlist has {competitor} on it; {competitor} quoted about 15% less.</p>',
    '<p>{first} asked for a side-by-side of {product} and {competitor}. Sent the competitor '
    'battle card and two references.</p><ul><li>Security review pending</li>'
    '<li>Decision by end of quarter</li></ul>',
    '<p>Renewal risk: {company} says a competitor ({competitor}) offers a free migration. '
    'Proposed {product} at this year&#39;s price.</p>',
    '<p>Demo of <strong>{product}</strong> went well. {first} liked the reporting &amp; '
    'the API; wants pricing for 25 seats.</p>',
    '<p>Left a voicemail for {first} about the {product} trial.</p>',
    '<p>Procurement at {company} wants a 3-year term for {product}; legal is reviewing the '
    'MSA.</p>',
    '<p>Lost to competitor {competitor} on price. {first} is open to talk again at '
    'renewal.</p>',
    '<p>Onboarding kickoff with {first}. {product} goes live for the support team next '
    'week.</p>')
CALL_TITLES = ('Discovery call with {first} {last}', 'Follow-up on {product}',
               'Pricing call: {company}', 'Renewal check-in with {first}',
               'Technical deep dive: {product}')
CALL_BODIES = ('<p>Talked through {product}. {first} will loop in IT. Next step: security '
               'questionnaire.</p>',
               '<p>{first} compared us with {competitor} (a competitor they used before). '
               'Concerned about migration effort.</p>',
               '<p>No decision yet; budget freezes until next quarter.</p>',
               '<p>Agreed on a pilot of {product} for 30 days.</p>')
EMAIL_SUBJECTS = ('Your {product} quote', 'Re: {product} pricing',
                  'Next steps for {company}', 'Meeting recap', 'Re: competitor comparison',
                  'Welcome to {product}')
MEETING_TITLES = ('Kickoff: {company}', '{product} demo', 'Quarterly business review',
                  'Contract review with {first}', 'Implementation planning')
TASK_SUBJECTS = ('Send {product} proposal to {first}', 'Follow up with {company}',
                 'Prepare competitor comparison vs {competitor}', 'Book renewal call',
                 'Share onboarding checklist', 'Chase signed order form')
FEEDBACK = ('Great onboarding, the team was responsive.', 'Reporting is too slow for us.',
            'Support solved my issue in minutes.', 'Missing an integration with our ERP.',
            'Pricing is higher than {competitor} but worth it.')
MAKES = (('Volvo', ('XC40', 'XC60', 'V60')), ('Toyota', ('Corolla', 'RAV4', 'Prius')),
         ('Ford', ('Focus', 'Kuga', 'F-150')), ('Tesla', ('Model 3', 'Model Y')),
         ('Volkswagen', ('Golf', 'ID.4', 'Passat')), ('BMW', ('320i', 'X3', 'i4')))
VIN_CHARS = 'ABCDEFGHJKLMNPRSTUVWXYZ0123456789'


def resolve_sizes(sizes):
    """{'notes': 5, 'cars': 3, '0-46': 2} -> {registered type: n}; raises
    ValueError for an unknown or core type."""
    out = {}
    for k, v in (sizes or {}).items():
        t = S.control_type(k)
        if t is None:
            raise ValueError('unknown object type %r in object sizes' % k)
        if t in S.CORE:
            raise ValueError('%s is sized by --%s, not --objects' % (t, t))
        n = int(v)
        if n < 0 or n > 999999:
            raise ValueError('size of %s must be between 0 and 999999' % k)
        out[t] = n
    return out


def _custom_named(name):
    for t, info in S.INFO.items():
        if info.custom and info.schema['name'] == name:
            return t
    return None


def seed_objects(store, seed=1, demo=False, sizes=None):
    """Seed every type other than the core four.  sizes: resolved sizes
    (resolve_sizes); in a demo the missing ones come from DEMO_OBJECTS."""
    want = dict(sizes or {})
    if demo:
        for k, v in DEMO_OBJECTS.items():
            t = _custom_named('contracts') if k == 'p_contracts' else S.control_type(k)
            if t is not None:
                want.setdefault(t, v)
    if not any(want.values()):
        return {}
    return _Seeder(store, seed, want).run()


class _Seeder(object):
    def __init__(self, store, seed, want):
        self.st = store
        self.rng = random.Random('hubfs-sandbox-objects-%d' % seed)
        self.want = want
        self.contacts = list(store.active['contacts'])
        self.companies = list(store.active['companies'])
        self.deals = list(store.active['deals'])
        self.tickets = list(store.active['tickets'])
        self.ids = {}
        self.pairs = {}          # (ft, tt, extra) -> (forward types, back types)
        self.primary_co = {}     # contact -> primary company
        for cid, m in store.assoc.get(('contacts', 'companies'), {}).items():
            for oid, types in m.items():
                if 1 in types:
                    self.primary_co[cid] = oid

    def n(self, t):
        return self.want.get(t, 0)

    def add(self, t, props, i, n):
        c, u = _times(self.rng.random, i, n)
        rid = self.st.seed_record(t, props, c, u)
        self.ids.setdefault(t, []).append(rid)
        return rid, c

    def link(self, ft, fid, tt, tid, extra=()):
        key = (ft, tt, extra)
        p = self.pairs.get(key)
        if p is None:
            unl = S.UNLABELED.get((ft, tt))
            if unl is None:
                self.pairs[key] = p = (None, None)
            else:
                fwd = set((unl,) + tuple(extra))
                back = {S.ASSOC_TYPES[x][5] for x in fwd} - {None}
                unl_b = S.UNLABELED.get((tt, ft))
                if unl_b is not None:
                    back.add(unl_b)
                p = self.pairs[key] = (self.st.types_tuple(fwd),
                                       self.st.types_tuple(back) if back else None)
        if p[0] is None:
            return
        a = self.st.assoc
        a.setdefault((ft, tt), {}).setdefault(fid, {})[tid] = p[0]
        if p[1] is not None:
            a.setdefault((tt, ft), {}).setdefault(tid, {})[fid] = p[1]

    def person(self):
        """(contact id, props, primary company id or None) of a random contact."""
        if not self.contacts:
            return None, {'firstname': 'Alex', 'lastname': 'Doe', 'email': 'alex@example.com',
                          'company': 'Example Co'}, None
        cid = self.contacts[self.rng.randrange(len(self.contacts))]
        return cid, self.st.tables['contacts'][cid].props, self.primary_co.get(cid)

    def words(self, tmpl, p):
        prod = PRODUCT_CATALOG[self.rng.randrange(len(PRODUCT_CATALOG))][0]
        return tmpl.format(first=p.get('firstname', 'Alex'), last=p.get('lastname', 'Doe'),
                           company=p.get('company', 'their company'), product=prod,
                           competitor=self.rng.choice(COMPETITORS))

    def owner(self):
        return OWNERS[self.rng.randrange(len(OWNERS))]

    def pick(self, lst):
        return lst[self.rng.randrange(len(lst))] if lst else None

    def run(self):
        order = ('users', 'products', 'quote_templates', 'discounts', 'fees', 'taxes',
                 'line_items', 'quotes', 'leads', 'notes', 'calls', 'emails', 'meetings',
                 'tasks', 'communications', 'postal_mail', 'feedback_submissions',
                 'invoices', 'orders', 'carts', 'subscriptions', 'commerce_payments',
                 'goal_targets', 'services', 'courses', 'listings', 'appointments',
                 'projects', 'contracts')
        for t in order:
            if self.n(t):
                getattr(self, 'seed_' + t)(self.n(t))
        for t in [x for x in S.ALL if S.is_custom(x)]:
            if self.n(t):
                name = S.INFO[t].schema['name']
                fn = getattr(self, 'seed_custom_' + name, None) or self.seed_custom_generic
                fn(t, self.n(t))
        return {t: self.st.count(t) for t in S.ALL if t not in S.CORE and self.n(t)}

    # ---- commerce
    def seed_users(self, n):
        for i in range(n):
            o = S.OWNERS[i % len(S.OWNERS)]
            self.add('users', {'hs_internal_user_id': str(o['userIdIncludingInactive']),
                               'hs_email': o['email'] if i < len(S.OWNERS) else
                               'user%d@hubfs-sandbox.test' % i,
                               'hs_given_name': o['firstName'], 'hs_family_name': o['lastName'],
                               'hs_job_title': self.rng.choice(TITLES),
                               'hs_standard_time_zone': self.rng.choice(
                                   ('US/Eastern', 'Europe/Berlin', 'Europe/London')),
                               'hs_working_hours': 'MONDAY_TO_FRIDAY 09:00-17:00'}, i, n)

    def seed_products(self, n):
        for i in range(n):
            name, sku, price, term = PRODUCT_CATALOG[i % len(PRODUCT_CATALOG)]
            if i >= len(PRODUCT_CATALOG):
                name, sku = '%s v%d' % (name, i // len(PRODUCT_CATALOG) + 1), '%s-%d' % (sku, i)
            p = {'name': name, 'hs_sku': sku, 'price': str(price), 'hs_folder': 'Catalog',
                 'description': '%s, billed %s.' % (name, {'P12M': 'yearly', 'P1M': 'monthly',
                                                         None: 'once'}[term]),
                 'hs_product_type': 'service' if sku.startswith('SRV') else 'non_inventory',
                 'hs_cost_of_goods_sold': str(price // 4)}
            if term:
                p['hs_recurring_billing_period'] = term
            self.add('products', p, i, n)

    def seed_quote_templates(self, n):
        for i in range(n):
            self.add('quote_templates', {'hs_name': ('Modern', 'Basic', 'Original')[i % 3] +
                                         ' quote template' + (' %d' % i if i > 2 else ''),
                                         'hs_path': 'quote-templates/%d.html' % i,
                                         'hs_active': 'true', 'hs_template_type': 'QUOTE'}, i, n)

    def _adjust(self, t, n, labels):
        for i in range(n):
            lab, typ, val = labels[i % len(labels)]
            self.add(t, {'hs_label': lab, 'hs_type': typ, 'hs_value': str(val),
                         'hs_sort_order': str(i), 'hs_duration': 'ONCE'}, i, n)

    def seed_discounts(self, n):
        self._adjust('discounts', n, (('Partner discount', 'PERCENT', 10),
                                      ('Launch offer', 'FIXED', 500),
                                      ('Multi-year', 'PERCENT', 15)))

    def seed_fees(self, n):
        self._adjust('fees', n, (('Setup fee', 'FIXED', 250), ('Card surcharge', 'PERCENT', 2)))

    def seed_taxes(self, n):
        self._adjust('taxes', n, (('VAT 19%', 'PERCENT', 19), ('Sales tax 8.875%', 'PERCENT',
                                                              8.875)))

    def seed_line_items(self, n):
        products = self.ids.get('products', [])
        for i in range(n):
            prod = self.pick(products)
            if prod is not None:
                pp = self.st.tables['products'][prod].props
                name, price, sku = pp['name'], pp['price'], pp['hs_sku']
            else:
                name, sku, price, _ = PRODUCT_CATALOG[i % len(PRODUCT_CATALOG)]
                price = str(price)
            p = {'name': name, 'price': price, 'hs_sku': sku,
                 'quantity': str(self.rng.choice((1, 1, 2, 5, 10, 25)))}
            if prod is not None:
                p['hs_product_id'] = str(prod)
            if self.rng.random() < 0.2:
                p['hs_discount_percentage'] = str(self.rng.choice((5, 10, 15)))
            rid, _ = self.add('line_items', p, i, n)
            if self.deals:
                self.link('line_items', rid, 'deals', self.deals[i % len(self.deals)])

    def seed_quotes(self, n):
        templates = self.ids.get('quote_templates', [])
        li_by_deal = {}
        for lid in self.ids.get('line_items', []):
            for did in self.st.assoc.get(('line_items', 'deals'), {}).get(lid, {}):
                li_by_deal.setdefault(did, []).append(lid)
        for i in range(n):
            did = self.deals[i % len(self.deals)] if self.deals else None
            dname = self.st.tables['deals'][did].props['dealname'] if did else 'Direct sale'
            owner = S.OWNERS[i % 6]
            c, _ = _times(self.rng.random, i, n)
            p = {'hs_title': 'Quote - %s' % dname, 'hs_expiration_date': _iso_day(c + 30 * DAY),
                 'hs_status': self.rng.choice(('DRAFT', 'APPROVAL_NOT_NEEDED', 'APPROVED')),
                 'hs_currency': 'USD', 'hs_language': 'en',
                 'hs_sender_firstname': owner['firstName'], 'hs_sender_lastname': owner['lastName'],
                 'hs_sender_email': owner['email'], 'hs_sender_company_name': 'hubfs Sandbox Inc.',
                 'hs_proposal_slug': 'quote-%d' % (i + 1), 'hs_quote_owner_id': owner['id']}
            rid, _ = self.add('quotes', p, i, n)
            if did:
                self.link('quotes', rid, 'deals', did)
                for lid in li_by_deal.get(did, []):
                    self.link('quotes', rid, 'line_items', lid)
                for cid in self.st.assoc.get(('deals', 'contacts'), {}).get(did, {}):
                    self.link('quotes', rid, 'contacts', cid)
                for co, types in self.st.assoc.get(('deals', 'companies'), {}).get(did,
                                                                                  {}).items():
                    self.link('quotes', rid, 'companies', co)
            if templates:
                self.link('quotes', rid, 'quote_templates', templates[i % len(templates)])

    def seed_leads(self, n):
        for i in range(n):
            cid, p, co = self.person()
            if cid is None:
                return
            rid, _ = self.add('leads', {
                'hs_lead_name': '%s %s - %s' % (p.get('firstname'), p.get('lastname'),
                                                self.rng.choice(PRODUCT_CATALOG)[0]),
                'hs_pipeline': 'lead-pipeline-id',
                'hs_pipeline_stage': self.rng.choice(S.STAGES['leads']['lead-pipeline-id']),
                'hs_lead_type': self.rng.choice(('NEW_BUSINESS', 'UPSELL')),
                'hs_lead_label': self.rng.choice(('HOT', 'WARM', 'COLD')),
                'hubspot_owner_id': self.owner()}, i, n)
            self.link('leads', rid, 'contacts', cid, (578,))
            if co is not None:
                self.link('leads', rid, 'companies', co, (580,))

    # ---- activities
    def _activity_links(self, t, rid, cid, co):
        if cid is not None:
            self.link(t, rid, 'contacts', cid)
        if co is not None:
            self.link(t, rid, 'companies', co)
            deals = list(self.st.assoc.get(('companies', 'deals'), {}).get(co, {}))
            if deals and self.rng.random() < 0.5:
                self.link(t, rid, 'deals', self.pick(deals))
        if self.tickets and self.rng.random() < 0.1:
            self.link(t, rid, 'tickets', self.pick(self.tickets))
        leads = self.ids.get('leads')
        if leads and self.rng.random() < 0.1:
            self.link(t, rid, 'leads', self.pick(leads))

    def seed_notes(self, n):
        for i in range(n):
            cid, p, co = self.person()
            c, _ = _times(self.rng.random, i, n)
            body = self.words(NOTE_TEXTS[i % len(NOTE_TEXTS)], p)
            rid, _ = self.add('notes', {'hs_timestamp': _iso(c), 'hs_note_body': _WRAP % body,
                                        'hubspot_owner_id': self.owner()}, i, n)
            self._activity_links('notes', rid, cid, co)

    def seed_calls(self, n):
        from .catalog import CALL_DISPOSITIONS
        for i in range(n):
            cid, p, co = self.person()
            c, _ = _times(self.rng.random, i, n)
            disp = self.rng.choice(CALL_DISPOSITIONS[:4])
            connected = disp[1] == 'Connected'
            props = {'hs_timestamp': _iso(c), 'hubspot_owner_id': self.owner(),
                     'hs_call_title': self.words(self.rng.choice(CALL_TITLES), p),
                     'hs_call_body': self.words(self.rng.choice(CALL_BODIES), p) if connected
                     else '<p>%s.</p>' % disp[1],
                     'hs_call_direction': self.rng.choice(('OUTBOUND', 'OUTBOUND', 'INBOUND')),
                     'hs_call_status': 'COMPLETED' if connected else
                     self.rng.choice(('COMPLETED', 'NO_ANSWER', 'BUSY')),
                     'hs_call_disposition': disp[0],
                     'hs_call_duration': str(self.rng.randrange(60, 2400) * 1000 if connected
                                             else self.rng.randrange(5, 40) * 1000),
                     'hs_call_from_number': '+1 617 555 0%03d' % self.rng.randrange(1000),
                     'hs_call_to_number': p.get('phone', '+1 617 555 0100')}
            rid, _ = self.add('calls', props, i, n)
            self._activity_links('calls', rid, cid, co)

    def seed_emails(self, n):
        for i in range(n):
            cid, p, co = self.person()
            c, _ = _times(self.rng.random, i, n)
            o = S.OWNERS[self.rng.randrange(6)]
            incoming = self.rng.random() < 0.35
            me = {'email': o['email'], 'firstName': o['firstName'], 'lastName': o['lastName']}
            them = {'email': p.get('email', 'alex@example.com'),
                    'firstName': p.get('firstname'), 'lastName': p.get('lastname')}
            frm, to = (them, me) if incoming else (me, them)
            subj = self.words(self.rng.choice(EMAIL_SUBJECTS), p)
            text = self.words('Hi {first},\n\nthanks for your time today. As discussed, '
                              '{product} covers what you need; happy to compare it with '
                              '{competitor} in detail.\n\nBest regards', p)
            if incoming:
                text = self.words('Hello,\n\nwe looked at {product}. Can you send the '
                                  'pricing for next year?\n\nThanks, {first}', p)
            props = {'hs_timestamp': _iso(c), 'hubspot_owner_id': o['id'],
                     'hs_email_direction': 'INCOMING_EMAIL' if incoming else 'EMAIL',
                     'hs_email_status': 'SENT', 'hs_email_subject': subj,
                     'hs_email_text': text,
                     'hs_email_html': '<div>%s</div>' % '<br>'.join(
                         x.replace('&', '&amp;') for x in text.split('\n')),
                     'hs_email_headers': dumps({'from': frm, 'sender': frm, 'to': [to],
                                                'cc': [], 'bcc': []})}
            rid, _ = self.add('emails', props, i, n)
            self._activity_links('emails', rid, cid, co)

    def seed_meetings(self, n):
        for i in range(n):
            cid, p, co = self.person()
            c, _ = _times(self.rng.random, i, n)
            start = c - c % (30 * 60000)
            props = {'hs_timestamp': _iso(start), 'hs_meeting_start_time': _iso(start),
                     'hs_meeting_end_time': _iso(start + self.rng.choice((30, 45, 60)) * 60000),
                     'hs_meeting_title': self.words(self.rng.choice(MEETING_TITLES), p),
                     'hs_meeting_body': _WRAP % self.words(
                         '<p>Agenda: goals for {product}, timeline, open questions.</p>', p),
                     'hs_internal_meeting_notes': self.words(
                         '<p>{first} mentioned {competitor} as the alternative.</p>', p),
                     'hs_meeting_location': self.rng.choice(('Zoom', 'Google Meet', 'On site')),
                     'hs_meeting_outcome': self.rng.choice(('COMPLETED', 'COMPLETED',
                                                           'SCHEDULED', 'RESCHEDULED',
                                                           'NO_SHOW', 'CANCELED')),
                     'hubspot_owner_id': self.owner()}
            rid, _ = self.add('meetings', props, i, n)
            self._activity_links('meetings', rid, cid, co)

    def seed_tasks(self, n):
        for i in range(n):
            cid, p, co = self.person()
            c, _ = _times(self.rng.random, i, n)
            due = c + self.rng.randrange(1, 21) * DAY
            status = self.rng.choice(('NOT_STARTED', 'NOT_STARTED', 'IN_PROGRESS', 'WAITING',
                                      'COMPLETED'))
            props = {'hs_timestamp': _iso(due - due % DAY + 17 * 3600000),
                     'hs_task_subject': self.words(self.rng.choice(TASK_SUBJECTS), p),
                     'hs_task_body': self.words('<p>Due before the next call with {first}.</p>',
                                                p),
                     'hs_task_status': status,
                     'hs_task_priority': self.rng.choice(('LOW', 'MEDIUM', 'HIGH')),
                     'hs_task_type': self.rng.choice(('EMAIL', 'CALL', 'TODO')),
                     'hubspot_owner_id': self.owner()}
            if status == 'COMPLETED':
                props['hs_task_completion_date'] = _iso(due - DAY)
            rid, _ = self.add('tasks', props, i, n)
            self._activity_links('tasks', rid, cid, co)

    def seed_communications(self, n):
        for i in range(n):
            cid, p, co = self.person()
            c, _ = _times(self.rng.random, i, n)
            rid, _ = self.add('communications', {
                'hs_timestamp': _iso(c),
                'hs_communication_channel_type': self.rng.choice(('SMS', 'WHATS_APP',
                                                                  'LINKEDIN_MESSAGE')),
                'hs_communication_logged_from': 'CRM',
                'hs_communication_body': self.words(
                    '<p>Hi {first}, quick reminder about our {product} call tomorrow.</p>', p),
                'hubspot_owner_id': self.owner()}, i, n)
            self._activity_links('communications', rid, cid, co)

    def seed_postal_mail(self, n):
        for i in range(n):
            cid, p, co = self.person()
            c, _ = _times(self.rng.random, i, n)
            rid, _ = self.add('postal_mail', {
                'hs_timestamp': _iso(c), 'hubspot_owner_id': self.owner(),
                'hs_postal_mail_body': self.words('<p>Sent the signed {product} order form and '
                                                  'a welcome pack to {company}.</p>', p)}, i, n)
            self._activity_links('postal_mail', rid, cid, co)

    def seed_feedback_submissions(self, n):
        for i in range(n):
            cid, p, co = self.person()
            score = self.rng.randrange(0, 11)
            rid, _ = self.add('feedback_submissions', {
                'hs_submission_name': 'NPS survey - %s %s' % (p.get('firstname'),
                                                              p.get('lastname')),
                'hs_content': self.words(self.rng.choice(FEEDBACK), p),
                'hs_survey_id': '7001', 'hs_survey_name': 'Customer NPS', 'hs_survey_type': 'NPS',
                'hs_value': str(score),
                'hs_response_group': 'PROMOTER' if score >= 9 else
                'PASSIVE' if score >= 7 else 'DETRACTOR',
                'hs_sentiment': 'POSITIVE' if score >= 9 else 'NEUTRAL' if score >= 7 else
                'NEGATIVE'}, i, n)
            if cid is not None:
                self.link('feedback_submissions', rid, 'contacts', cid)

    # ---- commerce objects
    def seed_invoices(self, n):
        lis = self.ids.get('line_items', [])
        for i in range(n):
            cid, p, co = self.person()
            c, _ = _times(self.rng.random, i, n)
            status = self.rng.choice(('draft', 'open', 'paid', 'paid'))
            amount = self.rng.randrange(10, 200) * 100
            rid, _ = self.add('invoices', {
                'hs_currency': 'USD', 'hs_invoice_status': status,
                'hs_invoice_date': _iso_day(c), 'hs_due_date': _iso_day(c + 30 * DAY),
                'hs_amount_billed': str(amount),
                'hs_balance_due': '0' if status == 'paid' else str(amount),
                'hs_invoice_billable': 'true'}, i, n)
            if cid is not None:
                self.link('invoices', rid, 'contacts', cid)
            if co is not None:
                self.link('invoices', rid, 'companies', co)
            if lis:
                self.link('invoices', rid, 'line_items', self.pick(lis))

    def seed_orders(self, n):
        stages = S.STAGES['orders']['15100001']
        for i in range(n):
            cid, p, co = self.person()
            rid, _ = self.add('orders', {
                'hs_order_name': 'Order #%d - %s' % (1001 + i, p.get('company', 'Web shop')),
                'hs_pipeline': '15100001', 'hs_pipeline_stage': self.rng.choice(stages),
                'hs_currency_code': 'USD', 'hs_total_price': str(self.rng.randrange(50, 5000)),
                'hs_external_order_id': 'WEB-%05d' % (7000 + i), 'hs_source_store': 'web',
                'hs_shipping_address_city': p.get('city', 'Boston')}, i, n)
            if cid is not None:
                self.link('orders', rid, 'contacts', cid)
            if co is not None:
                self.link('orders', rid, 'companies', co, (509,))

    def seed_carts(self, n):
        for i in range(n):
            cid, p, co = self.person()
            rid, _ = self.add('carts', {'hs_cart_name': 'Cart of %s' % p.get('firstname'),
                                        'hs_currency_code': 'USD', 'hs_source_store': 'web',
                                        'hs_total_price': str(self.rng.randrange(20, 900))},
                              i, n)
            if cid is not None:
                self.link('carts', rid, 'contacts', cid)

    def seed_subscriptions(self, n):
        for i in range(n):
            cid, p, co = self.person()
            c, _ = _times(self.rng.random, i, n)
            prod = self.rng.choice([x for x in PRODUCT_CATALOG if x[3]])
            rid, _ = self.add('subscriptions', {
                'hs_name': '%s - %s' % (prod[0], p.get('company', 'Customer')),
                'hs_status': self.rng.choice(('active', 'active', 'paused', 'canceled')),
                'hs_recurring_billing_period': prod[3], 'hs_currency_code': 'USD',
                'hs_next_payment_due_date': _iso_day(c + 365 * DAY),
                'hs_last_payment_amount': str(prod[2])}, i, n)
            if cid is not None:
                self.link('subscriptions', rid, 'contacts', cid)
            if co is not None:
                self.link('subscriptions', rid, 'companies', co)

    def seed_commerce_payments(self, n):
        for i in range(n):
            cid, p, co = self.person()
            c, _ = _times(self.rng.random, i, n)
            rid, _ = self.add('commerce_payments', {
                'hs_initial_amount': str(self.rng.randrange(10, 500) * 10),
                'hs_initiated_date': _iso(c), 'hs_currency_code': 'USD',
                'hs_latest_status': self.rng.choice(('succeeded', 'succeeded', 'refunded',
                                                     'failed')),
                'hs_payment_method_type': self.rng.choice(('card', 'ach', 'sepa')),
                'hs_customer_email': p.get('email', 'alex@example.com')}, i, n)
            if cid is not None:
                self.link('commerce_payments', rid, 'contacts', cid)

    def seed_goal_targets(self, n):
        for i in range(n):
            q = i % 4
            o = S.OWNERS[i % 6]
            start = 1704067200000 + q * 91 * DAY
            rid, _ = self.add('goal_targets', {
                'hs_goal_name': 'Revenue 2024 - %s %s' % (o['firstName'], o['lastName']),
                'hs_milestone': 'quarterly', 'hs_goal_type': 'revenue',
                'hs_target_amount': str(50000 + 10000 * (i % 3)),
                'hs_start_datetime': _iso(start), 'hs_end_datetime': _iso(start + 90 * DAY),
                'hs_group_correlation_uuid': '6c1d8a2e-0000-4000-8000-%012d' % (i // 4),
                'hs_goal_target_group_id': str(880001 + i // 4),
                'hs_assignee_user_id': str(o['userIdIncludingInactive'])}, i, n)
            if self.deals:
                self.link('goal_targets', rid, 'deals', self.pick(self.deals))

    # ---- object-library types and projects
    def _pipe_obj(self, t, n, mk):
        pid = S.PIPELINE_PROP[t][2]
        stages = S.STAGES[t][pid]
        for i in range(n):
            cid, p, co = self.person()
            props = mk(i, p)
            props.update({'hs_pipeline': pid, 'hs_pipeline_stage': self.rng.choice(stages),
                          'hubspot_owner_id': self.owner()})
            rid, _ = self.add(t, props, i, n)
            if cid is not None:
                self.link(t, rid, 'contacts', cid)
            if co is not None:
                self.link(t, rid, 'companies', co, (1299,) if t == 'projects' else ())

    def seed_services(self, n):
        self._pipe_obj('services', n, lambda i, p: {
            'hs_name': 'Managed %s for %s' % (self.rng.choice(('hosting', 'support',
                                                               'reporting')),
                                              p.get('company', 'a customer')),
            'hs_description': 'Monthly service with quarterly reviews.',
            'hs_target_end_date': _iso_day(T_END + (i + 1) * 30 * DAY)})

    def seed_courses(self, n):
        self._pipe_obj('courses', n, lambda i, p: {
            'hs_course_name': ('Admin basics', 'Reporting masterclass', 'API for developers',
                               'Sales playbooks')[i % 4] + (' %d' % i if i > 3 else ''),
            'hs_course_description': 'Live online course, 4 sessions.',
            'hs_start_date': _iso_day(T_START + (i + 1) * 60 * DAY),
            'hs_price': str(300 + 100 * (i % 3))})

    def seed_listings(self, n):
        def mk(i, p):
            city, _ = CITIES[i % len(CITIES)]
            return {'hs_name': '%d %s Street, %s' % (10 + i * 7, self.rng.choice(LAST), city),
                    'hs_address_1': '%d %s Street' % (10 + i * 7, self.rng.choice(LAST)),
                    'hs_city': city, 'hs_zip': '%05d' % self.rng.randrange(10000, 99999),
                    'hs_price': str(self.rng.randrange(150, 1500) * 1000),
                    'hs_bedrooms': str(self.rng.randrange(1, 6)),
                    'hs_bathrooms': str(self.rng.randrange(1, 4)),
                    'hs_square_footage': str(self.rng.randrange(50, 300) * 10),
                    'hs_listing_type': self.rng.choice(('house', 'apartment', 'condo'))}
        self._pipe_obj('listings', n, mk)

    def seed_appointments(self, n):
        def mk(i, p):
            c, _ = _times(self.rng.random, i, n)
            start = c - c % 3600000
            return {'hs_appointment_name': 'Consultation with %s %s' % (p.get('firstname'),
                                                                       p.get('lastname')),
                    'hs_appointment_start': _iso(start),
                    'hs_appointment_end': _iso(start + 3600000)}
        self._pipe_obj('appointments', n, mk)

    def seed_projects(self, n):
        self._pipe_obj('projects', n, lambda i, p: {
            'hs_name': '%s rollout at %s' % (self.rng.choice(PRODUCT_CATALOG)[0],
                                             p.get('company', 'a customer')),
            'hs_description': 'Implementation project with weekly check-ins.',
            'hs_target_due_date': _iso_day(T_END - (i + 1) * 20 * DAY)})

    def seed_contracts(self, n):
        for i in range(n):
            cid, p, co = self.person()
            c, _ = _times(self.rng.random, i, n)
            self.add('contracts', {'hs_name': 'Master agreement - %s' % p.get('company', 'n/a'),
                                   'hs_currency_code': 'USD',
                                   'hs_contract_effective_date': _iso_day(c),
                                   'hs_contract_end_date': _iso_day(c + 365 * DAY),
                                   'hs_total_value': str(self.rng.randrange(10, 300) * 1000)},
                     i, n)

    # ---- custom objects
    def seed_custom_cars(self, t, n):
        owner = C_label(t, 'contacts', 'car_owner')
        driver = C_label(t, 'contacts', 'test_driver')
        for i in range(n):
            make, models = MAKES[self.rng.randrange(len(MAKES))]
            c, _ = _times(self.rng.random, i, n)
            status = self.rng.choice(('in_stock', 'reserved', 'sold', 'sold', 'in_service'))
            props = {'vin': ''.join(self.rng.choice(VIN_CHARS) for _ in range(17)),
                     'make': make, 'model': self.rng.choice(models),
                     'year': str(self.rng.randrange(2015, 2025)),
                     'color': self.rng.choice(('black', 'white', 'silver', 'red', 'blue')),
                     'price': str(self.rng.randrange(15, 90) * 1000),
                     'status': status, 'mileage': str(self.rng.randrange(0, 120) * 1000)}
            if status == 'sold':
                props['purchase_date'] = _iso_day(c)
            if i % 3 == 0:
                props['inspection_notes'] = 'Brakes replaced; competitor trade-in offer matched.'
            rid, _ = self.add(t, props, i, n)
            cid, p, co = self.person()
            if cid is not None:
                if status == 'sold' and owner:
                    self.link(t, rid, 'contacts', cid, (owner,))
                elif driver:
                    self.link(t, rid, 'contacts', cid, (driver,))
            if co is not None and self.rng.random() < 0.4:
                self.link(t, rid, 'companies', co)
            if self.deals and self.rng.random() < 0.3:
                self.link(t, rid, 'deals', self.pick(self.deals))

    def seed_custom_contracts(self, t, n):
        for i in range(n):
            c, _ = _times(self.rng.random, i, n)
            co = self.pick(self.companies)
            name = self.st.tables['companies'][co].props['name'] if co else 'Customer'
            rid, _ = self.add(t, {'contract_name': 'Support contract - %s' % name,
                                  'start_date': _iso_day(c), 'end_date': _iso_day(c + 365 * DAY),
                                  'value': str(self.rng.randrange(2, 60) * 1000),
                                  'renewal': self.rng.choice(('auto', 'manual')),
                                  'signed': self.rng.choice(('true', 'false'))}, i, n)
            if co is not None:
                self.link(t, rid, 'companies', co)

    def seed_custom_generic(self, t, n):
        """A custom object created through the schemas API: fill its required
        (and string) properties with plausible values."""
        for i in range(n):
            props = {}
            for pdef in S.PROPERTY_LIST[t]:
                if pdef['hubspotDefined'] or pdef['calculated']:
                    continue
                typ = pdef['type']
                if typ == 'number':
                    props[pdef['name']] = str(self.rng.randrange(1, 1000))
                elif typ == 'enumeration' and pdef['options']:
                    props[pdef['name']] = self.rng.choice(pdef['options'])['value']
                elif typ == 'bool':
                    props[pdef['name']] = self.rng.choice(('true', 'false'))
                elif typ == 'date':
                    props[pdef['name']] = _iso_day(T_START + i * DAY)
                elif typ == 'datetime':
                    props[pdef['name']] = _iso(T_START + i * DAY)
                else:
                    props[pdef['name']] = '%s %d' % (pdef['label'], i + 1)
            self.add(t, props, i, n)


def C_label(t, other, name):
    from .catalog import PORTAL
    return PORTAL.label_names.get((t, other), {}).get(name)


_iso = iso_ms
