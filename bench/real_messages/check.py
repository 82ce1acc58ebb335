"""Validate sms_dev.jsonl, sms_holdout.jsonl, sms_fresh.jsonl, sms_fresh2.jsonl and sms_fresh3.jsonl, or the files named on the
command line (stdlib only). Exit 1 on any problem."""
import json, sys, os, datetime, collections
HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = {'promotional_offer','announcement','reminder_bill','transactional','service_advisory','security_warning'}
SEGS = {'potential_new_customers','new_followers','new_buyers','lapsing_buyers','abandoned_cart_buyers',
        'unpaid_order_buyers','post_purchase','price_drop','active_old_followers','frequent_buyers','repeat_buyers'}
LANGS = {'en','tl','id','ms','th','vi'}
TOP = ['id','segment','channel','title','body','send_date','source','expect']
SRC = ['dataset','url','path','licence','row']
EXP = ['language','kind','terms','valid_deadlines','stale','part_markers','personal','has_error','note']
errs = []; ids = {}; bodies = {}
for fn in sys.argv[1:] or ('sms_dev.jsonl', 'sms_holdout.jsonl', 'sms_fresh.jsonl', 'sms_fresh2.jsonl', 'sms_fresh3.jsonl'):
    for n, line in enumerate(open(os.path.join(HERE, fn), encoding='utf-8'), 1):
        where = f'{fn}:{n}'
        try:
            r = json.loads(line)
        except Exception as e:
            errs.append(f'{where}: invalid JSON ({e})'); continue
        for k in TOP:
            if k not in r: errs.append(f'{where}: missing {k}')
        if any(k not in r for k in TOP): continue
        rid = r['id']
        if rid in ids: errs.append(f'{where}: duplicate id {rid} (also {ids[rid]})')
        ids[rid] = where
        if r['body'] in bodies: errs.append(f'{where}: duplicate body (also {bodies[r["body"]]})')
        bodies[r['body']] = where
        if r['segment'] not in SEGS: errs.append(f'{where}: bad segment {r["segment"]}')
        if r['channel'] not in ('sms','push','email'): errs.append(f'{where}: bad channel')
        if r['title'] != '' and r['channel'] == 'sms': errs.append(f'{where}: sms with title')
        try: datetime.date.fromisoformat(r['send_date'])
        except Exception: errs.append(f'{where}: bad send_date {r["send_date"]}')
        for k in SRC:
            if not r['source'].get(k): errs.append(f'{where}: source.{k} empty')
        e = r['expect']
        for k in EXP:
            if k not in e: errs.append(f'{where}: expect.{k} missing')
        if e.get('language') not in LANGS: errs.append(f'{where}: bad language')
        if e.get('language') == 'tl' and not isinstance(e.get('taglish'), bool): errs.append(f'{where}: tl without taglish flag')
        if e.get('language') != 'tl' and 'taglish' in e: errs.append(f'{where}: taglish on non-tl')
        if e.get('kind') not in KINDS: errs.append(f'{where}: bad kind {e.get("kind")}')
        if not isinstance(e.get('has_error'), bool): errs.append(f'{where}: has_error not bool')
        if not rid.startswith(e.get('language', '?') + '-'): errs.append(f'{where}: id/language mismatch')
        for f in ('terms','valid_deadlines','stale','part_markers','personal'):
            for t in e.get(f, []):
                if not isinstance(t, str) or not t or t not in r['body']:
                    errs.append(f'{where} {rid}: expect.{f} not an exact substring of body: {t!r}')
        for t in e.get('stale', []):
            if t in e.get('valid_deadlines', []): errs.append(f'{where}: {t!r} both valid and stale')
if errs:
    print('\n'.join(errs)); print(f'{len(errs)} problem(s)'); sys.exit(1)
print(f'OK: {len(ids)} records, ids unique, all terms are exact substrings')
