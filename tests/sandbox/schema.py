"""Static account model of the sandbox: object types, property schema,
pipelines, owners, association types.

Everything here is immutable data built once at import.  See README.md for
where it deliberately differs from a real portal.
"""

# ---------------------------------------------------------------- object types

TYPES = ('contacts', 'companies', 'deals', 'tickets')
TYPE_ID = {'contacts': '0-1', 'companies': '0-2', 'deals': '0-3', 'tickets': '0-5'}
SINGULAR = {'contacts': 'contact', 'companies': 'company', 'deals': 'deal',
            'tickets': 'ticket'}
UPPER = {'contacts': 'CONTACT', 'companies': 'COMPANY', 'deals': 'DEAL',
         'tickets': 'TICKET'}
# Seeded and created record ids are numeric strings; each type has its own
# range so an id used with the wrong type is caught: the n-th contact is
# 1000000+n, companies 2000000+n, deals 3000000+n, tickets 5000000+n.
ID_BASE = {'contacts': 1000000, 'companies': 2000000, 'deals': 3000000,
           'tickets': 5000000}

_ALIASES = {}
for _t in TYPES:
    _ALIASES[_t] = _t
    _ALIASES[SINGULAR[_t]] = _t
    _ALIASES[TYPE_ID[_t]] = _t


def canon_type(name):
    """'contact' | 'contacts' | '0-1' | 'notes' | '0-46' | '2-4810001' |
    'p12345678_cars' (any case) -> the registered type name, else None.
    Custom objects answer to their objectTypeId and fullyQualifiedName only,
    never to their base name."""
    if not isinstance(name, str):
        return None
    return _ALIASES.get(name.lower())


# The four core types are TYPES; ALL lists every registered type (core,
# standard, custom) in registration order.  catalog.py registers the
# standard types at import; custom object types come and go with the
# schemas API and reset.
CORE = TYPES
ALL = list(TYPES)
CREATE_PROP = {t: 'createdate' for t in TYPES}


MODIFIED_PROP = {'contacts': 'lastmodifieddate', 'companies': 'hs_lastmodifieddate',
                 'deals': 'hs_lastmodifieddate', 'tickets': 'hs_lastmodifieddate'}

SYSTEM_PROPS = {t: ('createdate', MODIFIED_PROP[t], 'hs_object_id') for t in TYPES}

# §2.3: default properties of GET/list and of search when `properties` is absent.
DEFAULT_GET = {
    'contacts': ('firstname', 'lastname', 'email'),
    'companies': ('name', 'domain'),
    'deals': ('dealname', 'amount', 'closedate', 'pipeline', 'dealstage'),
    'tickets': ('content', 'hs_pipeline', 'hs_pipeline_stage', 'hs_ticket_category',
                'hs_ticket_priority', 'subject'),
}

# §3: properties searched by the free-text `query`.
QUERY_PROPS = {
    'contacts': ('firstname', 'lastname', 'email', 'phone', 'hs_additional_emails',
                 'fax', 'mobilephone', 'company', 'hs_marketable_until_renewal'),
    'companies': ('website', 'phone', 'name', 'domain'),
    'deals': ('dealname', 'pipeline', 'dealstage', 'description', 'dealtype'),
    'tickets': ('subject', 'content', 'hs_pipeline_stage', 'hs_ticket_category',
                'hs_ticket_id'),
}

LIFECYCLE_STAGES = ('subscriber', 'lead', 'marketingqualifiedlead',
                    'salesqualifiedlead', 'opportunity', 'customer', 'evangelist',
                    'other')
LIFECYCLE_LABELS = ('Subscriber', 'Lead', 'Marketing Qualified Lead',
                    'Sales Qualified Lead', 'Opportunity', 'Customer', 'Evangelist',
                    'Other')

SCHEMA_TIME_MS = 1577836800000  # 2020-01-01T00:00:00Z: creation of "the portal"

# ---------------------------------------------------------------- properties


def _opts(pairs):
    return [{'label': label, 'value': value, 'displayOrder': i, 'hidden': False,
             'description': ''} for i, (value, label) in enumerate(pairs)]


def _p(name, label, ptype, field, group, options=(), readonly=False, hubspot=True,
       calculated=False, external=False, ref=None, description=''):
    return {
        'name': name, 'label': label, 'type': ptype, 'fieldType': field,
        'groupName': group, 'description': description,
        'options': _opts(options) if options else [],
        'displayOrder': -1, 'calculated': calculated,
        'externalOptions': external, 'hasUniqueValue': False, 'hidden': False,
        'hubspotDefined': hubspot, 'formField': not readonly and not calculated,
        'modificationMetadata': {'archivable': not hubspot,
                                 'readOnlyDefinition': hubspot,
                                 'readOnlyValue': readonly},
        'dataSensitivity': 'non_sensitive', 'archived': False,
        **({'referencedObjectType': ref} if ref else {}),
    }


def _s(name, label, group, field='text', **kw):
    return _p(name, label, 'string', field, group, **kw)


def _n(name, label, group, **kw):
    return _p(name, label, 'number', 'number', group, **kw)


def _dt(name, label, group, **kw):
    return _p(name, label, 'datetime', 'date', group, **kw)


def _d(name, label, group, **kw):
    return _p(name, label, 'date', 'date', group, **kw)


def _b(name, label, group, **kw):
    return _p(name, label, 'bool', 'booleancheckbox', group,
              options=(('true', 'Yes'), ('false', 'No')), **kw)


def _e(name, label, group, options, field='select', **kw):
    return _p(name, label, 'enumeration', field, group, options=options, **kw)


def _owner(group):
    return _p('hubspot_owner_id', 'Contact owner' if group == 'contactinformation'
              else 'Owner', 'enumeration', 'select', group, external=True, ref='OWNER')


INDUSTRIES = (
    ('ACCOUNTING', 'Accounting'), ('AIRLINES_AVIATION', 'Airlines/Aviation'),
    ('BANKING', 'Banking'), ('BIOTECHNOLOGY', 'Biotechnology'),
    ('COMPUTER_SOFTWARE', 'Computer Software'), ('CONSTRUCTION', 'Construction'),
    ('CONSUMER_GOODS', 'Consumer Goods'), ('EDUCATION_MANAGEMENT', 'Education Management'),
    ('FINANCIAL_SERVICES', 'Financial Services'), ('FOOD_BEVERAGES', 'Food & Beverages'),
    ('HOSPITAL_HEALTH_CARE', 'Hospital & Health Care'),
    ('INFORMATION_TECHNOLOGY_AND_SERVICES', 'Information Technology and Services'),
    ('INSURANCE', 'Insurance'), ('INTERNET', 'Internet'),
    ('LOGISTICS_AND_SUPPLY_CHAIN', 'Logistics and Supply Chain'),
    ('MARKETING_AND_ADVERTISING', 'Marketing and Advertising'),
    ('MEDIA_PRODUCTION', 'Media Production'), ('REAL_ESTATE', 'Real Estate'),
    ('RETAIL', 'Retail'), ('TELECOMMUNICATIONS', 'Telecommunications'))

LEAD_STATUS = (('NEW', 'New'), ('OPEN', 'Open'), ('IN_PROGRESS', 'In Progress'),
               ('OPEN_DEAL', 'Open Deal'), ('UNQUALIFIED', 'Unqualified'),
               ('ATTEMPTED_TO_CONTACT', 'Attempted to Contact'),
               ('CONNECTED', 'Connected'), ('BAD_TIMING', 'Bad Timing'))

_LIFECYCLE = tuple(zip(LIFECYCLE_STAGES, LIFECYCLE_LABELS))

_CI = 'contactinformation'
_CO = 'companyinformation'
_DI = 'dealinformation'
_TI = 'ticketinformation'

_PROPS = {
    'contacts': [
        _s('email', 'Email', _CI), _s('firstname', 'First Name', _CI),
        _s('lastname', 'Last Name', _CI),
        _p('phone', 'Phone Number', 'string', 'phonenumber', _CI),
        _p('mobilephone', 'Mobile Phone Number', 'string', 'phonenumber', _CI),
        _p('fax', 'Fax Number', 'string', 'phonenumber', _CI),
        _s('company', 'Company Name', _CI), _s('jobtitle', 'Job Title', _CI),
        _s('website', 'Website URL', _CI), _s('address', 'Street Address', _CI),
        _s('city', 'City', _CI), _s('state', 'State/Region', _CI),
        _s('zip', 'Postal Code', _CI), _s('country', 'Country/Region', _CI),
        _e('lifecyclestage', 'Lifecycle Stage', _CI, _LIFECYCLE, field='radio'),
        _e('hs_lead_status', 'Lead Status', 'sales_properties', LEAD_STATUS,
           field='radio'),
        _owner(_CI),
        _dt('createdate', 'Create Date', _CI),
        _dt('lastmodifieddate', 'Last Modified Date', _CI, readonly=True),
        _n('hs_object_id', 'Record ID', _CI, readonly=True),
        _s('hs_additional_emails', 'Additional email addresses', _CI, readonly=True,
           field='textarea'),
        _b('hs_marketable_until_renewal', 'Marketing contact until next update', _CI,
           readonly=True),
        _n('num_associated_deals', 'Associated Deals', 'deal_information',
           readonly=True, calculated=True),
        _n('associatedcompanyid', 'Primary Associated Company ID', _CI, readonly=True),
        _b('hs_email_optout', 'Unsubscribed from all email', 'emailinformation',
           readonly=True),
        # custom properties of this portal
        _e('favorite_color', 'Favorite color', _CI,
           (('red', 'Red'), ('green', 'Green'), ('blue', 'Blue'),
            ('yellow', 'Yellow'), ('purple', 'Purple')), hubspot=False),
        _n('nps_score', 'NPS score', _CI, hubspot=False),
        _b('vip', 'VIP', _CI, hubspot=False),
        _e('interests', 'Interests', _CI,
           (('product_updates', 'Product updates'), ('webinars', 'Webinars'),
            ('events', 'Events'), ('case_studies', 'Case studies')),
           field='checkbox', hubspot=False),
    ],
    'companies': [
        _s('name', 'Company name', _CO), _s('domain', 'Company Domain Name', _CO),
        _s('website', 'Website URL', _CO),
        _e('industry', 'Industry', _CO, INDUSTRIES),
        _s('city', 'City', _CO), _s('state', 'State/Region', _CO),
        _s('country', 'Country/Region', _CO),
        _p('phone', 'Phone Number', 'string', 'phonenumber', _CO),
        _n('numberofemployees', 'Number of Employees', _CO),
        _n('annualrevenue', 'Annual Revenue', _CO),
        _e('lifecyclestage', 'Lifecycle Stage', _CO, _LIFECYCLE, field='radio'),
        _e('type', 'Type', _CO, (('PROSPECT', 'Prospect'), ('PARTNER', 'Partner'),
                                 ('RESELLER', 'Reseller'), ('VENDOR', 'Vendor'),
                                 ('OTHER', 'Other'))),
        _s('description', 'Description', _CO, field='textarea'),
        _owner(_CO),
        _dt('createdate', 'Create Date', _CO),
        _dt('hs_lastmodifieddate', 'Last Modified Date', _CO, readonly=True),
        _n('hs_object_id', 'Record ID', _CO, readonly=True),
        _n('num_associated_contacts', 'Number of Associated Contacts', _CO,
           readonly=True, calculated=True),
        _n('num_associated_deals', 'Number of Associated Deals', _CO,
           readonly=True, calculated=True),
        _n('hs_num_child_companies', 'Number of child companies', _CO,
           readonly=True, calculated=True),
        # custom
        _e('tier', 'Tier', _CO, (('gold', 'Gold'), ('silver', 'Silver'),
                                 ('bronze', 'Bronze')), hubspot=False),
        _d('contract_start', 'Contract start', _CO, hubspot=False),
    ],
    'deals': [
        _s('dealname', 'Deal Name', _DI), _n('amount', 'Amount', _DI),
        _e('dealstage', 'Deal Stage', _DI, (), field='radio'),
        _e('pipeline', 'Pipeline', _DI, (), field='select'),
        _dt('closedate', 'Close Date', _DI),
        _e('dealtype', 'Deal Type', _DI, (('newbusiness', 'New Business'),
                                          ('existingbusiness', 'Existing Business')),
           field='radio'),
        _e('hs_priority', 'Priority', _DI, (('low', 'Low'), ('medium', 'Medium'),
                                            ('high', 'High'))),
        _s('description', 'Deal Description', _DI, field='textarea'),
        _owner(_DI),
        _dt('createdate', 'Create Date', _DI),
        _dt('hs_lastmodifieddate', 'Last Modified Date', _DI, readonly=True),
        _n('hs_object_id', 'Record ID', _DI, readonly=True),
        _b('hs_is_closed', 'Is Deal Closed?', _DI, readonly=True, calculated=True),
        _b('hs_is_closed_won', 'Is Closed Won', _DI, readonly=True, calculated=True),
        _n('hs_deal_stage_probability', 'Deal probability', _DI, readonly=True,
           calculated=True),
        _n('num_associated_contacts', 'Number of Associated Contacts', _DI,
           readonly=True, calculated=True),
        # custom
        _s('forecast_note', 'Forecast note', _DI, field='textarea', hubspot=False),
    ],
    'tickets': [
        _s('subject', 'Ticket name', _TI), _s('content', 'Ticket description', _TI,
                                              field='textarea'),
        _e('hs_pipeline', 'Pipeline', _TI, ()),
        _e('hs_pipeline_stage', 'Ticket status', _TI, ()),
        _e('hs_ticket_priority', 'Priority', _TI,
           (('LOW', 'Low'), ('MEDIUM', 'Medium'), ('HIGH', 'High'),
            ('URGENT', 'Urgent'))),
        _e('hs_ticket_category', 'Category', _TI,
           (('PRODUCT_ISSUE', 'Product Issue'), ('BILLING_ISSUE', 'Billing Issue'),
            ('FEATURE_REQUEST', 'Feature Request'),
            ('GENERAL_INQUIRY', 'General Inquiry')), field='checkbox'),
        _e('source_type', 'Source', _TI, (('EMAIL', 'Email'), ('CHAT', 'Chat'),
                                          ('PHONE', 'Phone'), ('FORM', 'Form'))),
        _owner(_TI),
        _dt('createdate', 'Create date', _TI),
        _dt('hs_lastmodifieddate', 'Last modified date', _TI, readonly=True),
        _n('hs_object_id', 'Record ID', _TI, readonly=True),
        _n('hs_ticket_id', 'Ticket ID', _TI, readonly=True, calculated=True),
        # custom
        _b('escalated', 'Escalated', _TI, hubspot=False),
    ],
}

for _t, _lst in _PROPS.items():
    for _i, _prop in enumerate(_lst):
        _prop['displayOrder'] = _i if not _prop['hubspotDefined'] else -1
        _prop['createdAt'] = '2020-01-01T00:00:00.000Z'
        _prop['updatedAt'] = '2020-01-01T00:00:00.000Z'
        if not _prop['hubspotDefined']:
            _prop['createdUserId'] = '9100001'
            _prop['updatedUserId'] = '9100001'

PROPERTIES = {t: {p['name']: p for p in lst} for t, lst in _PROPS.items()}
PROPERTY_LIST = _PROPS

# Properties computed at read time (never stored).
CALCULATED = {t: frozenset(n for n, p in PROPERTIES[t].items() if p['calculated'])
              for t in TYPES}
CALCULATED_ALL = {t: CALCULATED[t] | {'hs_object_id'} for t in TYPES}

# ---------------------------------------------------------------- pipelines

_EPOCH0 = '1970-01-01T00:00:00.000Z'


def _stage(sid, label, order, meta):
    return {'id': sid, 'label': label, 'displayOrder': order,
            'metadata': meta, 'archived': False, 'createdAt': _EPOCH0,
            'updatedAt': _EPOCH0, 'writePermissions': 'CRM_PERMISSIONS_ENFORCEMENT'}


def _deal_stage(sid, label, order, prob, closed=False):
    return _stage(sid, label, order, {'probability': prob,
                                      'isClosed': 'true' if closed else 'false'})


PIPELINES = {
    'deals': [
        {'id': 'default', 'label': 'Sales Pipeline', 'displayOrder': 0,
         'archived': False, 'createdAt': _EPOCH0, 'updatedAt': _EPOCH0,
         'stages': [
             _deal_stage('appointmentscheduled', 'Appointment Scheduled', 0, '0.2'),
             _deal_stage('qualifiedtobuy', 'Qualified To Buy', 1, '0.4'),
             _deal_stage('presentationscheduled', 'Presentation Scheduled', 2, '0.6'),
             _deal_stage('decisionmakerboughtin', 'Decision Maker Bought-In', 3, '0.8'),
             _deal_stage('contractsent', 'Contract Sent', 4, '0.9'),
             _deal_stage('closedwon', 'Closed Won', 5, '1.0', True),
             _deal_stage('closedlost', 'Closed Lost', 6, '0.0', True),
         ]},
        {'id': '7421055', 'label': 'Renewals', 'displayOrder': 1,
         'archived': False, 'createdAt': '2021-03-04T10:11:12.000Z',
         'updatedAt': '2021-03-04T10:11:12.000Z',
         'stages': [
             _deal_stage('7421056', 'Renewal due', 0, '0.5'),
             _deal_stage('7421057', 'Renewed', 1, '1.0', True),
             _deal_stage('7421058', 'Churned', 2, '0.0', True),
         ]},
    ],
    'tickets': [
        {'id': '0', 'label': 'Support Pipeline', 'displayOrder': 0,
         'archived': False, 'createdAt': _EPOCH0, 'updatedAt': _EPOCH0,
         'stages': [
             _stage('1', 'New', 0, {'ticketState': 'OPEN'}),
             _stage('2', 'Waiting on contact', 1, {'ticketState': 'OPEN'}),
             _stage('3', 'Waiting on us', 2, {'ticketState': 'OPEN'}),
             _stage('4', 'Closed', 3, {'ticketState': 'CLOSED'}),
         ]},
    ],
}

PIPELINE_PROP = {'deals': ('pipeline', 'dealstage', 'default'),
                 'tickets': ('hs_pipeline', 'hs_pipeline_stage', '0')}

STAGES = {t: {p['id']: [s['id'] for s in p['stages']] for p in lst}
          for t, lst in PIPELINES.items()}
DEAL_STAGE_META = {s['id']: s['metadata'] for p in PIPELINES['deals']
                   for s in p['stages']}

# Properties a create must carry (HubSpot's object guides, §2.4).
REQUIRED_ON_CREATE = {'deals': ('dealname', 'dealstage'),
                      'tickets': ('subject', 'hs_pipeline_stage')}

# ---------------------------------------------------------------- owners


def _owner_rec(oid, user, first, last, email, team, archived=False):
    return {'id': oid, 'email': email, 'type': 'PERSON', 'firstName': first,
            'lastName': last, 'userId': None if archived else user,
            'userIdIncludingInactive': user,
            'createdAt': '2020-02-03T09:00:00.000Z',
            'updatedAt': '2023-06-01T12:00:00.000Z', 'archived': archived,
            'teams': [{'id': team[0], 'name': team[1], 'primary': True}]}


_SALES = ('4100001', 'Sales')
_SUPPORT = ('4100002', 'Support')
OWNERS = [
    _owner_rec('31000001', 9100001, 'Alice', 'Mercer', 'alice.mercer@hubfs-sandbox.test', _SALES),
    _owner_rec('31000002', 9100002, 'Bruno', 'Okafor', 'bruno.okafor@hubfs-sandbox.test', _SALES),
    _owner_rec('31000003', 9100003, 'Chen', 'Wei', 'chen.wei@hubfs-sandbox.test', _SALES),
    _owner_rec('31000004', 9100004, 'Dana', 'Kowalski', 'dana.kowalski@hubfs-sandbox.test', _SUPPORT),
    _owner_rec('31000005', 9100005, 'Emeka', 'Nwosu', 'emeka.nwosu@hubfs-sandbox.test', _SUPPORT),
    _owner_rec('31000006', 9100006, 'Fatima', 'Haddad', 'fatima.haddad@hubfs-sandbox.test', _SALES),
    _owner_rec('31000007', 9100007, 'Gustav', 'Lind', 'gustav.lind@hubfs-sandbox.test', _SALES,
               archived=True),
]
ACTIVE_OWNER_IDS = tuple(o['id'] for o in OWNERS if not o['archived'])
OWNER_IDS = frozenset(o['id'] for o in OWNERS)

# ---------------------------------------------------------------- associations

# typeId -> (from, to, category, label, v3 name, inverse typeId)
_A = {}


def _assoc(tid, frm, to, inv, label=None, v3=None, category='HUBSPOT_DEFINED'):
    _A[tid] = (frm, to, category, label, v3 or '%s_to_%s' % (SINGULAR[frm], SINGULAR[to]),
               inv)


_assoc(279, 'contacts', 'companies', 280, v3='contact_to_company_unlabeled')
_assoc(280, 'companies', 'contacts', 279, v3='company_to_contact_unlabeled')
_assoc(1, 'contacts', 'companies', 2, 'Primary')
_assoc(2, 'companies', 'contacts', 1, 'Primary')
_assoc(4, 'contacts', 'deals', 3)
_assoc(3, 'deals', 'contacts', 4)
_assoc(15, 'contacts', 'tickets', 16)
_assoc(16, 'tickets', 'contacts', 15)
_assoc(342, 'companies', 'deals', 341, v3='company_to_deal_unlabeled')
_assoc(341, 'deals', 'companies', 342, v3='deal_to_company_unlabeled')
_assoc(6, 'companies', 'deals', 5, 'Primary')
_assoc(5, 'deals', 'companies', 6, 'Primary')
_assoc(340, 'companies', 'tickets', 339, v3='company_to_ticket_unlabeled')
_assoc(339, 'tickets', 'companies', 340, v3='ticket_to_company_unlabeled')
_assoc(25, 'companies', 'tickets', 26, 'Primary')
_assoc(26, 'tickets', 'companies', 25, 'Primary')
_assoc(27, 'deals', 'tickets', 28)
_assoc(28, 'tickets', 'deals', 27)
_assoc(449, 'contacts', 'contacts', 449)
_assoc(450, 'companies', 'companies', 450)
_assoc(13, 'companies', 'companies', 14, 'Parent Company', v3='parent_to_child_company')
_assoc(14, 'companies', 'companies', 13, 'Child Company', v3='child_to_parent_company')
_assoc(451, 'deals', 'deals', 451)
_assoc(452, 'tickets', 'tickets', 452)
# USER_DEFINED labels of this portal
_assoc(30, 'contacts', 'companies', 31, 'Billing contact', v3='billing_contact',
       category='USER_DEFINED')
_assoc(31, 'companies', 'contacts', 30, 'Billing contact', v3='billing_contact',
       category='USER_DEFINED')
_assoc(37, 'contacts', 'deals', 38, 'Decision maker', v3='decision_maker',
       category='USER_DEFINED')
_assoc(38, 'deals', 'contacts', 37, 'Decision maker', v3='decision_maker',
       category='USER_DEFINED')

ASSOC_TYPES = _A

# (from, to) -> default (unlabeled) type id
UNLABELED = {}
# order in which a pair's types are listed (primary / labels first)
TYPE_ORDER = {}


def rebuild_assoc_index():
    """Recompute UNLABELED and TYPE_ORDER from ASSOC_TYPES (in place)."""
    UNLABELED.clear()
    TYPE_ORDER.clear()
    for tid, (f, t, c, label, v3, inv) in ASSOC_TYPES.items():
        if label is None and (f, t) not in UNLABELED:
            UNLABELED[(f, t)] = tid
        TYPE_ORDER[tid] = (0 if label else 1, tid)


rebuild_assoc_index()

# Primary types whose *from* record may hold only one target: contact,
# deal, ticket -> company; lead -> contact, company, deal; order -> company;
# project -> company.
PRIMARY_SINGLE = frozenset((1, 5, 26, 578, 580, 582, 509, 1299))


def assoc_spec(tid):
    f, t, cat, label, v3, inv = _A[tid]
    return {'category': cat, 'typeId': tid, 'label': label}


# ---------------------------------------------------------------- type registry

OPS_ALL = frozenset(('read', 'search', 'create', 'update', 'upsert', 'archive', 'merge'))


class TypeInfo(object):
    """Per-type facts beyond the property schema.

    ops        subset of OPS_ALL the objects API serves for the type
    delete     'archive' (recycle bin, restorable) or 'hard' (gone for good)
    empty_null requested-but-empty properties come back as null on GET/list
               (the activity guides' behaviour) instead of being omitted
    library    object-library type: needs enablement (0-162, 0-410, 0-420, 0-421)
    read/write scope clauses: every clause needs one of its scopes
    webhook    prefix of webhook subscription types ('contact', …, 'object')
    """

    def __init__(self, name, type_id, singular, labels, ops=OPS_ALL - {'merge'},
                 delete='archive', empty_null=False, library=False, custom=False,
                 read=(), write=(), webhook='object', display=None, id_base=None,
                 aliases=(), create_prop='hs_createdate', modified_prop='hs_lastmodifieddate'):
        self.name = name
        self.type_id = type_id
        self.singular = singular
        self.labels = labels
        self.ops = frozenset(ops)
        self.delete = delete
        self.empty_null = empty_null
        self.library = library
        self.custom = custom
        self.read = tuple(tuple(c) for c in read)
        self.write = tuple(tuple(c) for c in write)
        self.webhook = webhook
        self.display = display
        self.id_base = id_base
        self.aliases = tuple(aliases)
        self.create_prop = create_prop
        self.modified_prop = modified_prop
        self.schema = None           # custom objects: the ObjectSchema dict

    @property
    def readonly(self):
        return not (self.ops & {'create', 'update', 'upsert', 'archive'})


INFO = {}
PIPELINE_FIRST_STAGE = set()     # types whose stage defaults to the pipeline's first


def _sc(*names):
    return (tuple(names),)


INFO['contacts'] = TypeInfo('contacts', '0-1', 'contact', ('Contact', 'Contacts'),
                            ops=OPS_ALL, read=_sc('crm.objects.contacts.read'),
                            write=_sc('crm.objects.contacts.write'), webhook='contact',
                            display='email', id_base=ID_BASE['contacts'],
                            create_prop='createdate', modified_prop='lastmodifieddate')
INFO['companies'] = TypeInfo('companies', '0-2', 'company', ('Company', 'Companies'),
                             ops=OPS_ALL, read=_sc('crm.objects.companies.read'),
                             write=_sc('crm.objects.companies.write'), webhook='company',
                             display='name', id_base=ID_BASE['companies'],
                             create_prop='createdate')
INFO['deals'] = TypeInfo('deals', '0-3', 'deal', ('Deal', 'Deals'), ops=OPS_ALL,
                         read=_sc('crm.objects.deals.read'),
                         write=_sc('crm.objects.deals.write'), webhook='deal',
                         display='dealname', id_base=ID_BASE['deals'],
                         create_prop='createdate')
INFO['tickets'] = TypeInfo('tickets', '0-5', 'ticket', ('Ticket', 'Tickets'), ops=OPS_ALL,
                           read=_sc('tickets'), write=_sc('tickets'), webhook='ticket',
                           display='subject', id_base=ID_BASE['tickets'],
                           create_prop='createdate')


def finish_props(lst):
    """displayOrder / timestamps / user ids of a property list (in place)."""
    for i, prop in enumerate(lst):
        prop['displayOrder'] = i if not prop['hubspotDefined'] else -1
        prop.setdefault('createdAt', '2020-01-01T00:00:00.000Z')
        prop.setdefault('updatedAt', '2020-01-01T00:00:00.000Z')
        if not prop['hubspotDefined']:
            prop.setdefault('createdUserId', '9100001')
            prop.setdefault('updatedUserId', '9100001')
    return lst


def register_type(info, props, default_get=(), query_props=(), required=(),
                  pipelines=None, first_stage_default=False):
    """Add a type to every registry dict.  props: full property list."""
    t = info.name
    if t in INFO and t not in CORE and not info.custom:
        raise ValueError('type %s registered twice' % t)
    INFO[t] = info
    if t not in ALL:
        ALL.append(t)
    TYPE_ID[t] = info.type_id
    SINGULAR[t] = info.singular
    UPPER[t] = info.singular.upper()
    ID_BASE[t] = info.id_base
    # object-library types answer to their objectTypeId only (their specs
    # are authored on the id); their plural name is the sandbox's own key
    names = (info.type_id,) + info.aliases
    if not info.library:
        names = (t,) + names
    for a in names:
        _ALIASES[a.lower()] = t
    MODIFIED_PROP[t] = info.modified_prop
    CREATE_PROP[t] = info.create_prop
    SYSTEM_PROPS[t] = (info.create_prop, info.modified_prop, 'hs_object_id')
    DEFAULT_GET[t] = tuple(default_get)
    QUERY_PROPS[t] = tuple(query_props)
    PROPERTY_LIST[t] = props
    PROPERTIES[t] = {p['name']: p for p in props}
    CALCULATED[t] = frozenset(n for n, p in PROPERTIES[t].items() if p['calculated'])
    CALCULATED_ALL[t] = CALCULATED[t] | {'hs_object_id'}
    if required:
        REQUIRED_ON_CREATE[t] = tuple(required)
    if pipelines:
        PIPELINES[t] = pipelines
        PIPELINE_PROP[t] = ('hs_pipeline', 'hs_pipeline_stage', pipelines[0]['id'])
        STAGES[t] = {p['id']: [s['id'] for s in p['stages']] for p in pipelines}
        if first_stage_default:
            PIPELINE_FIRST_STAGE.add(t)


def unregister_type(t):
    info = INFO.pop(t, None)
    if info is None:
        return
    if t in ALL:
        ALL.remove(t)
    for k in [k for k, v in _ALIASES.items() if v == t]:
        del _ALIASES[k]
    for d in (TYPE_ID, SINGULAR, UPPER, ID_BASE, MODIFIED_PROP, CREATE_PROP, SYSTEM_PROPS,
              DEFAULT_GET, QUERY_PROPS, PROPERTY_LIST, PROPERTIES, CALCULATED,
              CALCULATED_ALL, REQUIRED_ON_CREATE, PIPELINES, PIPELINE_PROP, STAGES):
        d.pop(t, None)
    PIPELINE_FIRST_STAGE.discard(t)


def control_type(name):
    """Type lookup for the control API: what the API accepts, plus the
    sandbox's own names of object-library types (`courses`) and custom
    objects' base names (`cars`; a standard type of that name wins)."""
    t = canon_type(name)
    if t is not None or not isinstance(name, str):
        return t
    low = name.lower()
    if low in INFO:
        return low
    for k, info in INFO.items():
        if info.custom and info.schema and info.schema['name'].lower() == low:
            return k
    return None


def is_custom(t):
    info = INFO.get(t)
    return info is not None and info.custom


def v3_name(tid):
    return ASSOC_TYPES[tid][4]


def inverse(tid):
    """Inverse type id of tid, or None where HubSpot documents none."""
    return ASSOC_TYPES[tid][5]


# Types that are a record's "primary" association for leads: removing the
# last of them deletes the lead.
LEAD_PRIMARY = frozenset((578, 580, 582))


from . import catalog  # noqa: E402,F401  (registers the standard types)
