"""Every object type beyond the core four: standard types (ids, names,
scopes, operations, properties, pipelines), the HUBSPOT_DEFINED association
type ids between them, and the account's seeded custom objects.

Imported by schema.py once its core tables exist; registers everything into
schema's registry dicts.  Custom schemas and USER_DEFINED labels are
re-installed on every reset by `reset_portal()`.
"""

import copy

from . import schema as S
from .schema import (_p, _s, _n, _dt, _d, _b, _e, _owner, TypeInfo, OPS_ALL,
                     register_type, finish_props)

R = frozenset(('read', 'search'))
CRUD = OPS_ALL - {'merge'}

# ---------------------------------------------------------------- properties


def _sys(group, create_prop):
    return [_dt(create_prop, 'Create date', group),
            _dt('hs_lastmodifieddate', 'Last modified date', group, readonly=True),
            _n('hs_object_id', 'Record ID', group, readonly=True)]


def _html(name, label, group, **kw):
    return _p(name, label, 'string', 'html', group, **kw)


def _calc(name, label, group, ptype='string'):
    return _p(name, label, ptype, 'number' if ptype == 'number' else 'text', group,
              readonly=True, calculated=True)


def _activity(group, body=None):
    out = [_dt('hs_timestamp', 'Activity date', group), _owner(group),
           _s('hs_attachment_ids', 'Attachment IDs', group)]
    if body:
        out.append(_calc('hs_body_preview', 'Body preview', group))
    return out


def _pipe(group):
    return [_e('hs_pipeline', 'Pipeline', group, ()),
            _e('hs_pipeline_stage', 'Stage', group, ())]


def _stage(sid, label, order, closed=False):
    return {'id': sid, 'label': label, 'displayOrder': order,
            'metadata': {'isClosed': 'true' if closed else 'false'}, 'archived': False,
            'createdAt': '2021-05-10T09:00:00.000Z', 'updatedAt': '2021-05-10T09:00:00.000Z',
            'writePermissions': 'CRM_PERMISSIONS_ENFORCEMENT'}


def _pipeline(pid, label, stages):
    return [{'id': pid, 'label': label, 'displayOrder': 0, 'archived': False,
             'createdAt': '2021-05-10T09:00:00.000Z', 'updatedAt': '2021-05-10T09:00:00.000Z',
             'stages': [_stage(sid, lab, i, closed) for i, (sid, lab, closed)
                        in enumerate(stages)]}]


CALL_DISPOSITIONS = (
    ('f240bbac-87c9-4f6e-bf70-924b57d47db7', 'Connected'),
    ('73a0d17f-1163-4015-bdd5-ec830791da20', 'No answer'),
    ('9d9162e7-6cf3-4944-bf63-4dff82258764', 'Busy'),
    ('b2cf5968-551e-4856-9783-52b3da59a7d0', 'Left voicemail'),
    ('a4c4c377-d246-4b32-a13b-75a56a4cd0ff', 'Left live message'),
    ('17b47fee-58de-441e-a44c-c6300d46f273', 'Wrong number'))
CALL_STATUS = ('BUSY', 'CALLING_CRM_USER', 'CANCELED', 'COMPLETED', 'CONNECTING', 'FAILED',
               'IN_PROGRESS', 'NO_ANSWER', 'QUEUED', 'RINGING')
CURRENCIES = (('USD', 'US Dollar'), ('EUR', 'Euro'), ('GBP', 'British Pound'),
              ('CAD', 'Canadian Dollar'), ('AUD', 'Australian Dollar'))


def _o(*values):
    return tuple((v, v.replace('_', ' ').capitalize()) for v in values)


def _scopes(read, write=None):
    w = write if write is not None else tuple(tuple(x.replace('.read', '.write') for x in c)
                                             for c in read)
    return {'read': read, 'write': w}


CONTACTS_SCOPES = _scopes((('crm.objects.contacts.read',),))


def _activity_scopes(kind):
    return _scopes((('crm.objects.contacts.read', 'crm.objects.%s.read' % kind),),
                   (('crm.objects.contacts.write',),))


def _obj_scopes(name, legacy=None):
    if legacy:
        return _scopes((('crm.objects.%s.read' % name, legacy),),
                       (('crm.objects.%s.write' % name, legacy),))
    return _scopes((('crm.objects.%s.read' % name,),))


# Standard types: (name, objectTypeId, singular, (label, plural), options, props)
# Options: ops, delete, empty_null, library, aliases, create, default, query,
# required, pipelines, first_stage, scopes, webhook, display.
STANDARD = []


def std(name, tid, singular, labels, props, **kw):
    STANDARD.append((name, tid, singular, labels, props, kw))


_G = 'productinformation'
std('products', '0-7', 'product', ('Product', 'Products'), [
    _s('name', 'Name', _G), _s('description', 'Description', _G, field='textarea'),
    _n('price', 'Unit price', _G), _s('hs_sku', 'SKU', _G), _s('hs_folder', 'Folder', _G),
    _n('hs_cost_of_goods_sold', 'Unit cost', _G),
    _s('hs_recurring_billing_period', 'Term', _G),
    _e('hs_product_type', 'Product type', _G, _o('inventory', 'non_inventory', 'service')),
    _s('hs_url', 'URL', _G), _owner(_G)] + _sys(_G, 'createdate'),
    create='createdate', default=('name', 'description', 'price'),
    query=('name', 'description', 'price', 'hs_sku'),
    required=('hs_sku', 'hs_folder', 'price', 'name', 'description'),
    scopes=_obj_scopes('products', 'e-commerce'), webhook='product', display='name')

_G = 'lineiteminformation'
std('line_items', '0-8', 'line_item', ('Line item', 'Line items'), [
    _s('name', 'Name', _G), _n('price', 'Unit price', _G), _n('quantity', 'Quantity', _G),
    _calc('amount', 'Net price', _G, 'number'), _n('hs_product_id', 'Product ID', _G),
    _s('hs_sku', 'SKU', _G), _s('description', 'Description', _G, field='textarea'),
    _n('discount', 'Unit discount', _G), _n('hs_discount_percentage', 'Discount percentage', _G),
    _s('hs_recurring_billing_period', 'Term', _G),
    _n('hs_position_on_quote', 'Position on quote', _G)] + _sys(_G, 'createdate'),
    create='createdate', default=('quantity', 'amount', 'price'), empty_null=True,
    query=('name', 'hs_sku', 'description'),
    aliases=('line_item',), scopes=_obj_scopes('line_items', 'e-commerce'),
    webhook='line_item', display='name')

_G = 'quoteinformation'
std('quotes', '0-14', 'quote', ('Quote', 'Quotes'), [
    _s('hs_title', 'Quote name', _G), _d('hs_expiration_date', 'Expiration date', _G),
    _e('hs_status', 'Quote approval status', _G,
       _o('DRAFT', 'APPROVAL_NOT_NEEDED', 'PENDING_APPROVAL', 'APPROVED', 'REJECTED')),
    _calc('hs_quote_number', 'Quote number', _G), _calc('hs_public_url_key', 'Public URL key', _G),
    _s('hs_proposal_slug', 'Proposal slug', _G),
    _s('hs_sender_firstname', 'Sender first name', _G),
    _s('hs_sender_lastname', 'Sender last name', _G), _s('hs_sender_email', 'Sender email', _G),
    _s('hs_sender_company_name', 'Sender company name', _G),
    _e('hs_currency', 'Currency', _G, CURRENCIES), _s('hs_language', 'Language', _G),
    _s('hs_template_type', 'Template type', _G),
    _s('hs_comments', 'Comments', _G, field='textarea'),
    _calc('hs_quote_amount', 'Quote amount', _G, 'number'),
    _p('hs_quote_owner_id', 'Quote owner', 'enumeration', 'select', _G, external=True,
       ref='OWNER'),
    _p('hubspot_owner_id', 'Owner', 'enumeration', 'select', _G, external=True, ref='OWNER',
       readonly=True, calculated=True)] + _sys(_G, 'hs_createdate'),
    default=('hs_expiration_date', 'hs_public_url_key', 'hs_status', 'hs_title'),
    query=('hs_sender_firstname', 'hs_sender_lastname', 'hs_proposal_slug', 'hs_title',
           'hs_sender_company_name', 'hs_sender_email', 'hs_quote_number', 'hs_public_url_key'),
    required=('hs_title', 'hs_expiration_date'), aliases=('quote',),
    scopes=_obj_scopes('quotes', 'e-commerce'), display='hs_title')

_G = 'communicationinformation'
std('communications', '0-18', 'communication', ('Communication', 'Communications'),
    _activity(_G, body=True) + [
        _e('hs_communication_channel_type', 'Channel type', _G,
           (('WHATS_APP', 'WhatsApp'), ('LINKEDIN_MESSAGE', 'LinkedIn message'),
            ('SMS', 'SMS'))),
        _e('hs_communication_logged_from', 'Logged from', _G, (('CRM', 'CRM'),)),
        _html('hs_communication_body', 'Body', _G)] + _sys(_G, 'hs_createdate'),
    empty_null=True, required=('hs_timestamp', 'hs_communication_channel_type'),
    query=('hs_communication_body',), aliases=('communication',), scopes=CONTACTS_SCOPES,
    display='hs_body_preview')

_G = 'feedbacksubmissioninformation'
std('feedback_submissions', '0-19', 'feedback_submission',
    ('Feedback submission', 'Feedback submissions'), [
        _s('hs_submission_name', 'Submission name', _G),
        _s('hs_content', 'Response', _G, field='textarea'),
        _s('hs_survey_id', 'Survey ID', _G), _s('hs_survey_name', 'Survey name', _G),
        _e('hs_survey_type', 'Survey type', _G, _o('NPS', 'CSAT', 'CES', 'CUSTOM')),
        _e('hs_response_group', 'Response group', _G, _o('PROMOTER', 'PASSIVE', 'DETRACTOR')),
        _n('hs_value', 'Rating', _G),
        _e('hs_sentiment', 'Sentiment', _G, _o('POSITIVE', 'NEUTRAL', 'NEGATIVE'))]
    + _sys(_G, 'hs_createdate'),
    ops=R, query=('hs_submission_name', 'hs_content'),
    scopes=_scopes((('crm.objects.feedback_submissions.read',),
                    ('crm.objects.contacts.read',)), ()),
    display='hs_submission_name')

_G = 'taskinformation'
std('tasks', '0-27', 'task', ('Task', 'Tasks'), _activity(_G, body=True) + [
    _s('hs_task_subject', 'Task title', _G), _html('hs_task_body', 'Notes', _G),
    _e('hs_task_status', 'Task status', _G,
       _o('NOT_STARTED', 'IN_PROGRESS', 'WAITING', 'COMPLETED', 'DEFERRED')),
    _e('hs_task_priority', 'Priority', _G, _o('NONE', 'LOW', 'MEDIUM', 'HIGH')),
    _e('hs_task_type', 'Task type', _G, _o('EMAIL', 'CALL', 'TODO', 'LINKED_IN')),
    _s('hs_task_reminders', 'Reminders', _G),
    _dt('hs_task_completion_date', 'Completed at', _G, readonly=True)]
    + _sys(_G, 'hs_createdate'),
    empty_null=True, required=('hs_timestamp',), query=('hs_task_body', 'hs_task_subject'),
    scopes=_activity_scopes('tasks'), display='hs_task_subject')

_G = 'noteinformation'
std('notes', '0-46', 'note', ('Note', 'Notes'), _activity(_G, body=True) + [
    _html('hs_note_body', 'Note body', _G)] + _sys(_G, 'hs_createdate'),
    empty_null=True, required=('hs_timestamp',), query=('hs_note_body',),
    scopes=_activity_scopes('notes'), display='hs_body_preview')

_G = 'meetinginformation'
std('meetings', '0-47', 'meeting', ('Meeting', 'Meetings'), _activity(_G, body=True) + [
    _s('hs_meeting_title', 'Meeting name', _G), _html('hs_meeting_body', 'Meeting description', _G),
    _html('hs_internal_meeting_notes', 'Internal notes', _G),
    _s('hs_meeting_external_url', 'External URL', _G),
    _s('hs_meeting_location', 'Location', _G),
    _dt('hs_meeting_start_time', 'Start time', _G), _dt('hs_meeting_end_time', 'End time', _G),
    _e('hs_meeting_outcome', 'Meeting outcome', _G,
       _o('SCHEDULED', 'COMPLETED', 'RESCHEDULED', 'NO_SHOW', 'CANCELED'))]
    + _sys(_G, 'hs_createdate'),
    empty_null=True, required=('hs_timestamp',),
    query=('hs_meeting_title', 'hs_meeting_body'), scopes=_activity_scopes('meetings'),
    display='hs_meeting_title')

_G = 'callinformation'
std('calls', '0-48', 'call', ('Call', 'Calls'), _activity(_G, body=True) + [
    _s('hs_call_title', 'Call title', _G), _html('hs_call_body', 'Call notes', _G),
    _e('hs_call_direction', 'Call direction', _G, _o('INBOUND', 'OUTBOUND')),
    _e('hs_call_status', 'Call status', _G, _o(*CALL_STATUS)),
    _e('hs_call_disposition', 'Call outcome', _G, CALL_DISPOSITIONS),
    _n('hs_call_duration', 'Call duration (ms)', _G),
    _s('hs_call_from_number', 'From number', _G), _s('hs_call_to_number', 'To number', _G),
    _s('hs_call_recording_url', 'Recording URL', _G),
    _e('hs_call_source', 'Call source', _G, (('INTEGRATIONS_PLATFORM', 'Integrations platform'),))]
    + _sys(_G, 'hs_createdate'),
    empty_null=True, required=('hs_timestamp',), query=('hs_call_title', 'hs_body_preview'),
    scopes=_activity_scopes('calls'), display='hs_call_title')

_G = 'emailinformation'
std('emails', '0-49', 'email', ('Email', 'Emails'), _activity(_G, body=True) + [
    _e('hs_email_direction', 'Email direction', _G,
       _o('EMAIL', 'INCOMING_EMAIL', 'FORWARDED_EMAIL')),
    _e('hs_email_status', 'Email send status', _G,
       _o('BOUNCED', 'FAILED', 'SCHEDULED', 'SENDING', 'SENT')),
    _s('hs_email_subject', 'Subject', _G), _s('hs_email_text', 'Body (text)', _G,
                                            field='textarea'),
    _html('hs_email_html', 'Body (HTML)', _G),
    _s('hs_email_headers', 'Headers (JSON)', _G, field='textarea'),
    _calc('hs_email_from_email', 'From email', _G),
    _calc('hs_email_from_firstname', 'From first name', _G),
    _calc('hs_email_from_lastname', 'From last name', _G),
    _calc('hs_email_to_email', 'To email', _G),
    _calc('hs_email_to_firstname', 'To first name', _G),
    _calc('hs_email_to_lastname', 'To last name', _G)] + _sys(_G, 'hs_createdate'),
    empty_null=True, required=('hs_timestamp', 'hs_email_direction'),
    query=('hs_email_subject',), delete='hard',
    scopes=_scopes((('crm.objects.contacts.read', 'crm.objects.emails.read'),
                    ('sales-email-read',)),
                   (('crm.objects.contacts.write',), ('sales-email-read',))),
    display='hs_email_subject')

_G = 'invoiceinformation'
std('invoices', '0-53', 'invoice', ('Invoice', 'Invoices'), [
    _e('hs_currency', 'Currency', _G, CURRENCIES),
    _e('hs_invoice_status', 'Invoice status', _G, _o('draft', 'open', 'paid', 'voided')),
    _calc('hs_number', 'Invoice number', _G), _d('hs_invoice_date', 'Invoice date', _G),
    _d('hs_due_date', 'Due date', _G), _n('hs_amount_billed', 'Amount billed', _G),
    _n('hs_balance_due', 'Balance due', _G), _b('hs_invoice_billable', 'Billable', _G),
    _s('hs_purchase_order_number', 'PO number', _G),
    _s('hs_comments', 'Comments', _G, field='textarea')] + _sys(_G, 'createdate'),
    create='createdate', required=('hs_currency',), query=('hs_number',),
    scopes=_obj_scopes('invoices'), display='hs_number')

_G = 'quotetemplateinformation'
std('quote_templates', '0-64', 'quote_template', ('Quote template', 'Quote templates'), [
    _s('hs_name', 'Template name', _G), _s('hs_path', 'Template path', _G),
    _b('hs_active', 'Active', _G),
    _s('hs_template_type', 'Template type', _G)] + _sys(_G, 'hs_createdate'),
    ops=R, aliases=('quote_template',), query=('hs_name',),
    scopes=_scopes((('crm.objects.quotes.read', 'e-commerce'),), ()), display='hs_name')

_G = 'subscriptioninformation'
std('subscriptions', '0-69', 'subscription', ('Subscription', 'Subscriptions'), [
    _s('hs_name', 'Name', _G),
    _e('hs_status', 'Status', _G, _o('active', 'scheduled', 'paused', 'canceled', 'expired')),
    _s('hs_recurring_billing_period', 'Billing frequency', _G),
    _d('hs_next_payment_due_date', 'Next payment due', _G),
    _e('hs_currency_code', 'Currency', _G, CURRENCIES),
    _n('hs_last_payment_amount', 'Last payment amount', _G)] + _sys(_G, 'hs_createdate'),
    required=('hs_name',), query=('hs_name',), scopes=_obj_scopes('subscriptions'),
    display='hs_name')

_G = 'goaltargetinformation'
std('goal_targets', '0-74', 'goal_target', ('Goal', 'Goals'), [
    _s('hs_goal_name', 'Goal name', _G),
    _e('hs_milestone', 'Milestone', _G, _o('monthly', 'quarterly', 'annually')),
    _s('hs_goal_type', 'Goal type', _G), _n('hs_target_amount', 'Target', _G),
    _dt('hs_start_datetime', 'Start', _G), _dt('hs_end_datetime', 'End', _G),
    _s('hs_group_correlation_uuid', 'Goal group id', _G),
    _n('hs_goal_target_group_id', 'Goal target group id', _G),
    _n('hs_assignee_user_id', 'Assignee user id', _G)] + _sys(_G, 'hs_createdate'),
    required=('hs_goal_name', 'hs_milestone', 'hs_goal_type', 'hs_target_amount',
              'hs_start_datetime', 'hs_end_datetime', 'hs_group_correlation_uuid',
              'hs_goal_target_group_id'),
    query=('hs_goal_name',), scopes=_obj_scopes('goals'), display='hs_goal_name')


def _adjustment(name, tid, singular, labels, legacy):
    g = singular + 'information'
    std(name, tid, singular, labels, [
        _s('hs_label', 'Label', g), _e('hs_type', 'Type', g, _o('FIXED', 'PERCENT')),
        _n('hs_value', 'Value', g), _n('hs_sort_order', 'Sort order', g),
        _e('hs_duration', 'Duration', g, _o('ONCE', 'FOREVER'))] + _sys(g, 'createdate'),
        create='createdate', query=('hs_label',),
        aliases=(singular,) if singular == 'discount' else (),
        scopes=_obj_scopes('line_items', legacy), display='hs_label')


_adjustment('discounts', '0-84', 'discount', ('Discount', 'Discounts'), 'e-commerce')
_adjustment('fees', '0-85', 'fee', ('Fee', 'Fees'), 'e-commerce')
_adjustment('taxes', '0-86', 'tax', ('Tax', 'Taxes'), None)

_G = 'commercepaymentinformation'
std('commerce_payments', '0-101', 'commerce_payment', ('Payment', 'Payments'), [
    _n('hs_initial_amount', 'Gross amount', _G), _dt('hs_initiated_date', 'Initiated', _G),
    _e('hs_currency_code', 'Currency', _G, CURRENCIES),
    _e('hs_latest_status', 'Status', _G,
       _o('processing', 'succeeded', 'failed', 'refunded', 'partially_refunded')),
    _e('hs_payment_method_type', 'Payment method', _G, _o('card', 'ach', 'sepa')),
    _s('hs_customer_email', 'Customer email', _G)] + _sys(_G, 'createdate'),
    create='createdate', required=('hs_initial_amount', 'hs_initiated_date'),
    query=('hs_customer_email',), aliases=('commerce_payment',),
    scopes=_obj_scopes('commercepayments'))

_G = 'userinformation'
std('users', '0-115', 'user', ('User', 'Users'), [
    _n('hs_internal_user_id', 'User id', _G), _s('hs_email', 'Email', _G),
    _s('hs_given_name', 'First name', _G), _s('hs_family_name', 'Last name', _G),
    _s('hs_job_title', 'Job title', _G), _s('hs_standard_time_zone', 'Time zone', _G),
    _s('hs_working_hours', 'Working hours', _G, field='textarea'),
    _s('hs_phone', 'Phone', _G)] + _sys(_G, 'hs_createdate'),
    required=('hs_internal_user_id', 'hs_email'), query=('hs_email', 'hs_given_name',
                                                         'hs_family_name'),
    scopes=_obj_scopes('users'), display='hs_email')

_G = 'postalmailinformation'
std('postal_mail', '0-116', 'postal_mail', ('Postal mail', 'Postal mail'),
    _activity(_G, body=True) + [_html('hs_postal_mail_body', 'Body', _G)]
    + _sys(_G, 'hs_createdate'),
    empty_null=True, required=('hs_timestamp',), query=('hs_postal_mail_body',),
    scopes=CONTACTS_SCOPES, display='hs_body_preview')

_G = 'orderinformation'
std('orders', '0-123', 'order', ('Order', 'Orders'), [
    _s('hs_order_name', 'Order name', _G)] + _pipe(_G) + [
    _e('hs_currency_code', 'Currency', _G, CURRENCIES),
    _n('hs_total_price', 'Total', _G), _n('hs_subtotal_price', 'Subtotal', _G),
    _s('hs_external_order_id', 'External order id', _G),
    _s('hs_source_store', 'Source store', _G),
    _s('hs_shipping_address_city', 'Shipping city', _G)] + _sys(_G, 'createdate'),
    create='createdate', required=('hs_order_name',), query=('hs_order_name',),
    pipelines=_pipeline('15100001', 'Orders', (
        ('15100002', 'Checkout pending', False), ('15100003', 'Checkout completed', False),
        ('15100004', 'Processed', False), ('15100005', 'Shipped', True),
        ('15100006', 'Cancelled', True))), first_stage=True,
    scopes=_obj_scopes('orders'), display='hs_order_name')

_G = 'leadinformation'
std('leads', '0-136', 'lead', ('Lead', 'Leads'), [
    _s('hs_lead_name', 'Lead name', _G)] + _pipe(_G) + [
    _e('hs_lead_type', 'Lead type', _G,
       (('NEW_BUSINESS', 'New business'), ('UPSELL', 'Upsell'),
        ('RE_ATTEMPTING', 'Re-attempting'))),
    _e('hs_lead_label', 'Lead label', _G, _o('HOT', 'WARM', 'COLD')), _owner(_G),
    _calc('hs_associated_contact_email', 'Contact email', _G),
    _calc('hs_associated_contact_firstname', 'Contact first name', _G),
    _calc('hs_associated_contact_lastname', 'Contact last name', _G),
    _calc('hs_associated_company_name', 'Company name', _G),
    _calc('hs_associated_company_domain', 'Company domain', _G)] + _sys(_G, 'createdate'),
    create='createdate', empty_null=True, required=('hs_lead_name',), query=('hs_lead_name',),
    pipelines=_pipeline('lead-pipeline-id', 'Lead pipeline', (
        ('new-stage-id', 'New', False), ('attempting-stage-id', 'Attempting', False),
        ('connected-stage-id', 'Connected', False), ('qualified-stage-id', 'Qualified', True),
        ('unqualified-stage-id', 'Disqualified', True))), first_stage=True,
    scopes=_obj_scopes('leads'), display='hs_lead_name')

_G = 'cartinformation'
std('carts', '0-142', 'cart', ('Cart', 'Carts'), [
    _s('hs_cart_name', 'Cart name', _G), _e('hs_currency_code', 'Currency', _G, CURRENCIES),
    _n('hs_total_price', 'Total', _G), _s('hs_source_store', 'Source store', _G),
    _s('hs_cart_url', 'Cart URL', _G)] + _sys(_G, 'createdate'),
    create='createdate', query=('hs_cart_name',), scopes=_obj_scopes('carts'),
    display='hs_cart_name')

_G = 'serviceinformation'
std('services', '0-162', 'service', ('Service', 'Services'), [
    _s('hs_name', 'Name', _G)] + _pipe(_G) + [
    _s('hs_description', 'Description', _G, field='textarea'),
    _d('hs_target_end_date', 'Target end date', _G), _owner(_G)] + _sys(_G, 'hs_createdate'),
    library=True, required=('hs_name', 'hs_pipeline', 'hs_pipeline_stage'), query=('hs_name',),
    pipelines=_pipeline('15200001', 'Service delivery', (
        ('15200002', 'Planned', False), ('15200003', 'In progress', False),
        ('15200004', 'On hold', False), ('15200005', 'Completed', True))),
    scopes=_obj_scopes('services'), display='hs_name')

_G = 'courseinformation'
std('courses', '0-410', 'course', ('Course', 'Courses'), [
    _s('hs_course_name', 'Course name', _G)] + _pipe(_G) + [
    _s('hs_course_description', 'Description', _G, field='textarea'),
    _d('hs_start_date', 'Start date', _G), _n('hs_price', 'Price', _G), _owner(_G)]
    + _sys(_G, 'hs_createdate'),
    library=True, required=('hs_course_name',), query=('hs_course_name',),
    pipelines=_pipeline('15400001', 'Courses', (
        ('15400002', 'Enrollment open', False), ('15400003', 'Running', False),
        ('15400004', 'Finished', True))), first_stage=True,
    scopes=_obj_scopes('courses'), display='hs_course_name')

_G = 'listinginformation'
std('listings', '0-420', 'listing', ('Listing', 'Listings'), [
    _s('hs_name', 'Listing name', _G), _s('hs_address_1', 'Address', _G),
    _s('hs_city', 'City', _G), _s('hs_state_province', 'State/Province', _G),
    _s('hs_zip', 'Postal code', _G), _n('hs_price', 'Price', _G),
    _n('hs_bedrooms', 'Bedrooms', _G), _n('hs_bathrooms', 'Bathrooms', _G),
    _n('hs_square_footage', 'Square footage', _G),
    _e('hs_listing_type', 'Listing type', _G,
       _o('house', 'townhouse', 'apartment', 'condo', 'land'))] + _pipe(_G) + [_owner(_G)]
    + _sys(_G, 'hs_createdate'),
    library=True, required=('hs_name',), query=('hs_name', 'hs_address_1', 'hs_city'),
    pipelines=_pipeline('15500001', 'Listings', (
        ('15500002', 'Coming soon', False), ('15500003', 'Active', False),
        ('15500004', 'Under contract', False), ('15500005', 'Sold', True),
        ('15500006', 'Withdrawn', True))), first_stage=True,
    scopes=_obj_scopes('listings'), display='hs_name')

_G = 'appointmentinformation'
std('appointments', '0-421', 'appointment', ('Appointment', 'Appointments'), [
    _s('hs_appointment_name', 'Appointment name', _G),
    _dt('hs_appointment_start', 'Start', _G), _dt('hs_appointment_end', 'End', _G)]
    + _pipe(_G) + [_owner(_G)] + _sys(_G, 'hs_createdate'),
    ops=OPS_ALL, library=True, required=('hs_appointment_name',),
    query=('hs_appointment_name',),
    pipelines=_pipeline('15600001', 'Appointments', (
        ('15600002', 'Scheduled', False), ('15600003', 'Completed', True),
        ('15600004', 'Cancelled', True), ('15600005', 'No show', True))), first_stage=True,
    scopes=_obj_scopes('appointments'), display='hs_appointment_name')

_G = 'projectinformation'
std('projects', '0-970', 'project', ('Project', 'Projects'), [
    _s('hs_name', 'Project name', _G)] + _pipe(_G) + [
    _s('hs_description', 'Description', _G, field='textarea'),
    _d('hs_target_due_date', 'Target due date', _G), _owner(_G)] + _sys(_G, 'hs_createdate'),
    ops=OPS_ALL, required=('hs_name', 'hs_pipeline', 'hs_pipeline_stage'), query=('hs_name',),
    pipelines=_pipeline('15300001', 'Projects', (
        ('15300002', 'Not started', False), ('15300003', 'In progress', False),
        ('15300004', 'Completed', True), ('15300005', 'Cancelled', True))),
    scopes=_obj_scopes('projects'), display='hs_name')

_G = 'contractinformation'
std('contracts', '0-721', 'contract', ('Contract', 'Contracts'), [
    _s('hs_name', 'Contract name', _G), _e('hs_currency_code', 'Currency', _G, CURRENCIES),
    _d('hs_contract_effective_date', 'Effective start date', _G),
    _d('hs_contract_end_date', 'End date', _G), _n('hs_total_value', 'Total value', _G)]
    + _sys(_G, 'hs_createdate'),
    ops=frozenset(('read',)), query=('hs_name',),
    scopes=_scopes((('crm.objects.contracts.read',),), ()), display='hs_name')


def _register_standard():
    for name, tid, singular, labels, props, kw in STANDARD:
        scopes = kw.get('scopes') or {'read': (), 'write': ()}
        num = int(tid.split('-')[1])
        info = TypeInfo(name, tid, singular, labels, ops=kw.get('ops', CRUD),
                        delete=kw.get('delete', 'archive'),
                        empty_null=kw.get('empty_null', False),
                        library=kw.get('library', False), read=scopes['read'],
                        write=scopes['write'], webhook=kw.get('webhook', 'object'),
                        display=kw.get('display'), id_base=num * 1000000,
                        aliases=kw.get('aliases', ()),
                        create_prop=kw.get('create', 'hs_createdate'))
        register_type(info, finish_props(props), default_get=kw.get('default', ()),
                      query_props=kw.get('query', ()), required=kw.get('required', ()),
                      pipelines=kw.get('pipelines'),
                      first_stage_default=kw.get('first_stage', False))


_register_standard()

# Object-library types and their objectTypeIds (enablement API).
LIBRARY = {S.TYPE_ID[t]: t for t in S.ALL if S.INFO[t].library}

# Every scope the sandbox knows (the default grant of a token).
ALL_SCOPES = set(['oauth', 'crm.objects.owners.read', 'crm.schemas.custom.read',
                  'crm.schemas.custom.write', 'crm.objects.custom.read',
                  'crm.objects.custom.write', 'e-commerce', 'sales-email-read',
                  'crm.objects.calls.read', 'crm.objects.emails.read',
                  'crm.objects.meetings.read', 'crm.objects.notes.read',
                  'crm.objects.tasks.read'])
for _t in S.ALL:
    for _c in S.INFO[_t].read + S.INFO[_t].write:
        ALL_SCOPES.update(_c)

# ---------------------------------------------------------------- association types

# (from, to, id, inverse id or None, label or None); HUBSPOT_DEFINED.
# An inverse of None: HubSpot documents no id for the other direction, so
# the other side carries only its own unlabeled type (where one exists).
_ROWS = [
    ('deals', 'line_items', 19, 20), ('deals', 'quotes', 63, 64),
    ('quotes', 'line_items', 67, 68), ('quotes', 'contacts', 69, 70),
    ('quotes', 'companies', 71, 72), ('quotes', 'quote_templates', 286, None),
    ('quotes', 'contacts', 702, 703, 'Signer'),
    ('quotes', 'contacts', 1226, 1227, 'Billing contact'),
    ('quotes', 'companies', 1334, 1335, 'Billing company'),
    ('quotes', 'discounts', 362, 361), ('quotes', 'fees', 364, 363),
    ('quotes', 'taxes', 366, 365), ('quotes', 'invoices', 408, 407),
    ('quotes', 'orders', 731, None), ('quotes', 'carts', 733, None),
    ('quotes', 'commerce_payments', 398, None), ('quotes', 'subscriptions', 304, None),
    ('line_items', 'discounts', 368, 367),
    ('deals', 'invoices', 176, 175), ('deals', 'orders', 511, 512),
    ('deals', 'carts', 1346, 1347), ('deals', 'commerce_payments', 392, 391),
    ('deals', 'subscriptions', 300, 299),
    ('contacts', 'invoices', 178, 177), ('contacts', 'orders', 508, 507),
    ('contacts', 'carts', 587, 586), ('contacts', 'commerce_payments', 388, 387),
    ('contacts', 'subscriptions', 296, 295),
    ('companies', 'invoices', 180, 179), ('companies', 'orders', 935, 934),
    ('companies', 'orders', 510, 509, 'Primary'),
    ('companies', 'commerce_payments', 390, 389), ('companies', 'subscriptions', 298, 297),
    ('invoices', 'line_items', 409, 410), ('orders', 'line_items', 513, 514),
    ('carts', 'line_items', 590, 591), ('subscriptions', 'line_items', 301, 302),
    ('commerce_payments', 'line_items', 395, 396),
    # leads
    ('leads', 'contacts', 608, 609), ('leads', 'contacts', 578, None, 'Primary'),
    ('leads', 'companies', 610, 611), ('leads', 'companies', 580, None, 'Primary'),
    ('leads', 'deals', 1037, 1038), ('leads', 'deals', 582, 583, 'Primary'),
    # feedback submissions
    ('feedback_submissions', 'contacts', 98, 97),
    ('feedback_submissions', 'companies', 928, 929),
    ('feedback_submissions', 'deals', 984, 985),
    ('feedback_submissions', 'tickets', 100, 99),
    ('feedback_submissions', 'calls', 1155, 1156),
    ('feedback_submissions', 'carts', 1157, None),
    ('feedback_submissions', 'subscriptions', 1173, None),
    ('feedback_submissions', 'invoices', 1159, None),
    ('feedback_submissions', 'leads', 1161, None),
    ('feedback_submissions', 'orders', 1167, None),
    ('feedback_submissions', 'quotes', 1171, None),
    ('feedback_submissions', 'commerce_payments', 1169, None),
    ('goal_targets', 'deals', 1356, 1357),
    ('tickets', 'orders', 526, 525), ('tickets', 'subscriptions', 1122, 1121),
    ('tickets', 'commerce_payments', 1355, 1354),
    ('invoices', 'subscriptions', 622, None), ('invoices', 'orders', 517, None),
    ('invoices', 'tickets', 986, None), ('invoices', 'discounts', 411, None),
    ('invoices', 'fees', 413, None), ('invoices', 'taxes', 415, None),
    ('invoices', 'commerce_payments', 541, None),
    ('calls', 'meetings', 399, 400),
    ('tasks', 'quotes', 218, 217),
    ('projects', 'contacts', 1242, 1243), ('projects', 'companies', 1236, 1237),
    ('projects', 'companies', 1299, None, 'Primary'), ('projects', 'deals', 1238, 1239),
    ('projects', 'tickets', 1240, 1241),
]

# object-library types -> core four and projects
for _lib, _ids in (('appointments', (906, 907, 908, 909, 944, 945, 946, 947, 1325)),
                   ('courses', (860, 861, 938, 939, 862, 863, 940, 941, 1323)),
                   ('listings', (882, 883, 884, 885, 886, 887, 942, 943, 1321)),
                   ('services', (798, 799, 792, 793, 794, 795, 796, 797, 1245))):
    _ROWS += [(_lib, 'contacts', _ids[0], _ids[1]), (_lib, 'companies', _ids[2], _ids[3]),
              (_lib, 'deals', _ids[4], _ids[5]), (_lib, 'tickets', _ids[6], _ids[7]),
              (_lib, 'projects', _ids[8], None)]

# activities: activity -> (contact, company, deal, ticket, lead, order, appointment,
# course, listing, service, project) as (id, inverse id); None = no such type
_ACT = {
    'notes': ((202, 201), (190, 189), (214, 213), (228, 227), (855, 854), (765, 764),
              (921, 920), (875, 874), (899, 898), (837, 836), (1249, None)),
    'calls': ((194, 193), (182, 181), (206, 205), (220, 219), (597, 596), (773, 772),
              (913, 912), (867, 866), (891, 890), (841, 840), (1258, None)),
    'emails': ((198, 197), (186, 185), (210, 209), (224, 223), None, (777, 776),
               (917, 916), (871, 870), (895, 894), (843, 842), (1260, None)),
    'meetings': ((200, 199), (188, 187), (212, 211), (226, 225), (601, 600), (769, 768),
                 (919, 918), (873, 872), (897, 896), (839, 838), None),
    'tasks': ((204, 203), (192, 191), (216, 215), (230, 229), (647, 646), (727, 726),
              (923, 922), (877, 876), (901, 900), (853, 852), (1247, None)),
    'communications': ((81, 82), (87, 88), (85, 86), (83, 84), (603, 602), (785, 784),
                       (925, 924), (879, 878), (903, 902), (847, 846), (1282, None)),
    'postal_mail': ((453, 454), (459, 460), (457, 458), (455, 456), None, (788, 789),
                    (927, 926), (881, 880), (905, 904), (849, 848), (1264, None)),
}
_ACT_TARGETS = ('contacts', 'companies', 'deals', 'tickets', 'leads', 'orders',
                'appointments', 'courses', 'listings', 'services', 'projects')
for _a, _pairs in _ACT.items():
    for _to, _pair in zip(_ACT_TARGETS, _pairs):
        if _pair is not None:
            _ROWS.append((_a, _to, _pair[0], _pair[1]))
# a lead -> email type exists without an email -> lead one
_ROWS.append(('leads', 'emails', 598, None))


def _v3(frm, to, label):
    base = '%s_to_%s' % (S.SINGULAR[frm], S.SINGULAR[to])
    if label == 'Primary':
        return '%s_to_primary_%s' % (S.SINGULAR[frm], S.SINGULAR[to])
    if label:
        return '%s_%s' % (base, label.lower().replace(' ', '_'))
    return base


def _register_rows():
    for row in _ROWS:
        frm, to, tid, inv = row[:4]
        label = row[4] if len(row) > 4 else None
        if tid in S.ASSOC_TYPES:
            raise ValueError('association type %d defined twice' % tid)
        S.ASSOC_TYPES[tid] = (frm, to, 'HUBSPOT_DEFINED', label, _v3(frm, to, label), inv)
        if inv is not None:
            if inv in S.ASSOC_TYPES:
                raise ValueError('association type %d defined twice' % inv)
            S.ASSOC_TYPES[inv] = (to, frm, 'HUBSPOT_DEFINED', label, _v3(to, frm, label), tid)
    S.rebuild_assoc_index()


_register_rows()

# The association table of a fresh portal (core + standard types + the
# core USER_DEFINED labels); reset_portal() starts from it.
BASE_ASSOC = dict(S.ASSOC_TYPES)

# Labels are possible between these types (and custom objects).
LABEL_TYPES = frozenset(('contacts', 'companies', 'deals', 'tickets'))

# ---------------------------------------------------------------- custom objects

# Custom objects get associations to these types automatically.
CUSTOM_AUTO = ('calls', 'emails', 'meetings', 'notes', 'tasks')
CUSTOM_TIME = '2023-02-14T10:30:00.000Z'


def _cprop(name, label, ptype='string', field=None, options=(), unique=False, group=None):
    field = field or {'string': 'text', 'number': 'number', 'date': 'date',
                      'datetime': 'date', 'bool': 'booleancheckbox',
                      'enumeration': 'select'}[ptype]
    if ptype == 'bool':
        options = (('true', 'Yes'), ('false', 'No'))
    p = _p(name, label, ptype, field, group or 'custom_information', options=options,
           hubspot=False)
    p['hasUniqueValue'] = unique
    p['createdAt'] = p['updatedAt'] = CUSTOM_TIME
    return p


# The seeded custom schemas: (numeric id, egg).  Record ids of the k-th
# custom type (1-based, creation order) are (2000 + k) * 1,000,000 + n.
SEED_SCHEMAS = [
    ('4810001', {
        'name': 'cars', 'labels': {'singular': 'Car', 'plural': 'Cars'},
        'description': 'Vehicles in stock, sold or serviced',
        'primaryDisplayProperty': 'model', 'secondaryDisplayProperties': ['make'],
        'requiredProperties': ['year', 'make', 'vin', 'model'],
        'searchableProperties': ['year', 'make', 'vin', 'model'],
        'properties': [
            _cprop('vin', 'VIN', unique=True), _cprop('make', 'Make'),
            _cprop('model', 'Model'), _cprop('year', 'Year', 'number'),
            _cprop('color', 'Color', 'enumeration',
                   options=_o('black', 'white', 'silver', 'red', 'blue', 'green')),
            _cprop('price', 'Price', 'number'),
            _cprop('status', 'Status', 'enumeration',
                   options=_o('in_stock', 'reserved', 'sold', 'in_service')),
            _cprop('purchase_date', 'Purchase date', 'date'),
            _cprop('mileage', 'Mileage', 'number'),
            _cprop('inspection_notes', 'Inspection notes', field='textarea')],
        'associatedObjects': ['0-1', '0-2', '0-3'],
        'labels_between': [
            # (other type, name, label, inverse label)
            ('contacts', 'car_owner', 'Owner', 'Owned car'),
            ('contacts', 'test_driver', 'Test driver', None)],
    }),
    ('4810002', {
        'name': 'contracts', 'labels': {'singular': 'Service contract',
                                        'plural': 'Service contracts'},
        'description': 'Maintenance and support contracts (predates HubSpot contracts)',
        'primaryDisplayProperty': 'contract_name', 'secondaryDisplayProperties': ['renewal'],
        'requiredProperties': ['contract_name', 'start_date'],
        'searchableProperties': ['contract_name'],
        'properties': [
            _cprop('contract_name', 'Contract name'), _cprop('start_date', 'Start', 'date'),
            _cprop('end_date', 'End', 'date'), _cprop('value', 'Annual value', 'number'),
            _cprop('renewal', 'Renewal', 'enumeration', options=_o('auto', 'manual')),
            _cprop('signed', 'Signed', 'bool')],
        'associatedObjects': ['0-2', '0-3'],
        'labels_between': [],
    }),
]


class Portal(object):
    """The mutable part of the registry: custom schemas and USER_DEFINED
    association labels.  One per process (the sandbox serves one portal)."""

    def __init__(self):
        self.portal_id = 12345678
        self.custom = []            # type names of custom objects, creation order
        self.next_custom = 1
        self.next_schema_id = 4810003
        self.label_names = {}       # (from, to) -> {name: typeId}
        self.assoc_defs = {}        # custom type -> [AssociationDefinition]
        self.archived_schemas = []

    def alloc_type_id(self):
        """A free association type id for a label or custom association."""
        tid = 39
        while tid in S.ASSOC_TYPES:
            tid += 1
        return tid


PORTAL = Portal()


def reset_portal(portal_id, custom=True):
    """Back to the seeded registry: standard types, the core labels, the
    seeded custom schemas (unless custom=False) and their labels."""
    for t in list(PORTAL.custom):
        S.unregister_type(t)
    PORTAL.__init__()
    PORTAL.portal_id = portal_id
    S.ASSOC_TYPES.clear()
    S.ASSOC_TYPES.update(BASE_ASSOC)
    PORTAL.label_names = {}
    for tid, d in BASE_ASSOC.items():
        if d[2] == 'USER_DEFINED':
            PORTAL.label_names.setdefault((d[0], d[1]), {})[d[4]] = tid
    S.rebuild_assoc_index()
    if custom:
        for num, egg in SEED_SCHEMAS:
            egg = copy.deepcopy(egg)
            between = egg.pop('labels_between')
            t = create_schema(egg, num=num, when=CUSTOM_TIME)
            for other, name, label, inv in between:
                add_label(t, other, name, label, inv)


def _resolve(x):
    t = S.canon_type(x) if isinstance(x, str) else None
    if t is None and isinstance(x, str):
        t = S.canon_type({'CONTACT': 'contacts', 'COMPANY': 'companies', 'DEAL': 'deals',
                          'TICKET': 'tickets'}.get(x.upper(), x))
    return t


def create_schema(egg, num=None, when=None):
    """Register a custom object type from an ObjectSchemaEgg (validated by
    the caller); returns its type name (the fullyQualifiedName)."""
    num = str(num or PORTAL.next_schema_id)
    if int(num) >= PORTAL.next_schema_id:
        PORTAL.next_schema_id = int(num) + 1
    k = PORTAL.next_custom
    PORTAL.next_custom += 1
    name = egg['name']
    fqn = 'p%d_%s' % (PORTAL.portal_id, name)
    type_id = '2-' + num
    labels = egg['labels']
    group = name + '_information'
    props = [dict(p) for p in egg['properties']]
    for p in props:
        p.setdefault('groupName', group)
    sysp = [_dt('hs_createdate', 'Create date', group),
            _dt('hs_lastmodifieddate', 'Last modified date', group, readonly=True),
            _n('hs_object_id', 'Record ID', group, readonly=True)]
    for p in sysp:
        p['createdAt'] = p['updatedAt'] = when or CUSTOM_TIME
    props = finish_props(props + sysp)
    info = TypeInfo(fqn, type_id, fqn, (labels['singular'], labels['plural']), ops=OPS_ALL,
                    custom=True, read=(('crm.objects.custom.read',),),
                    write=(('crm.objects.custom.write',),),
                    display=egg.get('primaryDisplayProperty'),
                    id_base=(2000 + k) * 1000000)
    register_type(info, props, default_get=(),
                  query_props=egg.get('searchableProperties') or (),
                  required=egg.get('requiredProperties') or ())
    now = when or CUSTOM_TIME
    info.schema = {
        'id': num, 'objectTypeId': type_id, 'fullyQualifiedName': fqn, 'name': name,
        'labels': dict(labels), 'description': egg.get('description'),
        'primaryDisplayProperty': egg.get('primaryDisplayProperty'),
        'secondaryDisplayProperties': list(egg.get('secondaryDisplayProperties') or []),
        'requiredProperties': list(egg.get('requiredProperties') or []),
        'searchableProperties': list(egg.get('searchableProperties') or []),
        'metaType': 'PORTAL_SPECIFIC',
        'allowsSensitiveProperties': bool(egg.get('allowsSensitiveProperties', False)),
        'archived': False, 'createdAt': now, 'updatedAt': now,
        'createdByUserId': 9100001, 'updatedByUserId': 9100001}
    PORTAL.custom.append(fqn)
    PORTAL.assoc_defs[fqn] = []
    targets = []
    for x in list(CUSTOM_AUTO) + list(egg.get('associatedObjects') or []):
        tt = _resolve(x)
        if tt is not None and tt not in targets:
            targets.append(tt)
    for tt in targets:
        add_custom_association(fqn, tt, when=now)
    return fqn


def add_custom_association(t, tt, name=None, when=None):
    """Unlabeled association between custom type t and tt (both
    directions); returns the AssociationDefinition of t -> tt."""
    for d in PORTAL.assoc_defs.get(t, []):
        if d['toObjectTypeId'] == S.TYPE_ID[tt]:
            return d
    fwd = PORTAL.alloc_type_id()
    S.ASSOC_TYPES[fwd] = (t, tt, 'USER_DEFINED', None,
                          name or '%s_to_%s' % (S.SINGULAR[t], S.SINGULAR[tt]), None)
    if tt == t:
        S.ASSOC_TYPES[fwd] = S.ASSOC_TYPES[fwd][:5] + (fwd,)
    else:
        inv = PORTAL.alloc_type_id()
        S.ASSOC_TYPES[inv] = (tt, t, 'USER_DEFINED', None,
                              '%s_to_%s' % (S.SINGULAR[tt], S.SINGULAR[t]), fwd)
        S.ASSOC_TYPES[fwd] = S.ASSOC_TYPES[fwd][:5] + (inv,)
    S.rebuild_assoc_index()
    now = when or CUSTOM_TIME
    d = {'id': str(fwd), 'fromObjectTypeId': S.TYPE_ID[t], 'toObjectTypeId': S.TYPE_ID[tt],
         'name': name or S.ASSOC_TYPES[fwd][4], 'createdAt': now, 'updatedAt': now}
    PORTAL.assoc_defs.setdefault(t, []).append(d)
    if tt in PORTAL.assoc_defs and tt != t:
        rd = {'id': str(S.ASSOC_TYPES[fwd][5]), 'fromObjectTypeId': S.TYPE_ID[tt],
              'toObjectTypeId': S.TYPE_ID[t], 'name': S.ASSOC_TYPES[S.ASSOC_TYPES[fwd][5]][4],
              'createdAt': now, 'updatedAt': now}
        PORTAL.assoc_defs[tt].append(rd)
    return d


def remove_custom_association(t, ident):
    """Remove an association definition of custom type t by id or name;
    returns False when unknown."""
    defs = PORTAL.assoc_defs.get(t, [])
    for d in defs:
        if d['id'] == str(ident) or d['name'] == ident:
            tid = int(d['id'])
            inv = S.ASSOC_TYPES[tid][5]
            tt = S.ASSOC_TYPES[tid][1]
            for x in (tid, inv):
                if x is not None:
                    S.ASSOC_TYPES.pop(x, None)
            defs.remove(d)
            other = PORTAL.assoc_defs.get(tt)
            if other:
                other[:] = [x for x in other if x['id'] != str(inv)]
            # labels of the pair go with it
            for x in [k for k, v in S.ASSOC_TYPES.items()
                      if {v[0], v[1]} == {t, tt} and v[2] == 'USER_DEFINED']:
                del S.ASSOC_TYPES[x]
            PORTAL.label_names.pop((t, tt), None)
            PORTAL.label_names.pop((tt, t), None)
            S.rebuild_assoc_index()
            return True
    return False


def labels_allowed(ft, tt):
    return ((ft in LABEL_TYPES or S.is_custom(ft)) and (tt in LABEL_TYPES or S.is_custom(tt))
            and (ft, tt) in S.UNLABELED and (tt, ft) in S.UNLABELED)


def user_labels(ft, tt):
    return [tid for tid, d in S.ASSOC_TYPES.items()
            if d[0] == ft and d[1] == tt and d[2] == 'USER_DEFINED' and d[3] is not None]


def add_label(ft, tt, name, label, inverse_label=None):
    """A USER_DEFINED label ft -> tt (and its other direction); returns the
    [(typeId, label)] the POST labels call answers with."""
    fwd = PORTAL.alloc_type_id()
    S.ASSOC_TYPES[fwd] = (ft, tt, 'USER_DEFINED', label, name, None)
    if ft == tt and not inverse_label:
        S.ASSOC_TYPES[fwd] = (ft, tt, 'USER_DEFINED', label, name, fwd)
        inv = fwd
    else:
        inv = PORTAL.alloc_type_id()
        S.ASSOC_TYPES[inv] = (tt, ft, 'USER_DEFINED', inverse_label or label, name, fwd)
        S.ASSOC_TYPES[fwd] = (ft, tt, 'USER_DEFINED', label, name, inv)
    PORTAL.label_names.setdefault((ft, tt), {})[name] = fwd
    S.rebuild_assoc_index()
    out = [(fwd, label)]
    if inverse_label:
        out.append((inv, inverse_label))
    return out
