// The public web form: report a problem (with photos and a location) and look a ticket up.
// Plain JavaScript, no libraries. The server checks everything again and is the authority; the
// checks here only save a round trip. Every message a citizen sees is Chinese.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const ACCEPTED = ['image/jpeg', 'image/png', 'image/webp'];
  const MOBILE = /^1[3-9]\d{9}$/;

  // Filled from /api/v1/web/form; these defaults match the server's.
  let info = {
    hotline: '',
    hotline_name: '',
    categories: [],
    max_photos: 9,
    max_photo_bytes: 10 * 1024 * 1024,
    content_min_chars: 5,
    content_max_chars: 2000,
  };
  // The photos chosen so far: { file, url }.
  let photos = [];
  // The Idempotency-Key of the report on the page: made at the first attempt, resent on every
  // retry, replaced only when a new report is started. The server makes one ticket per key.
  let reportKey = null;
  let busy = false;
  let looking = false;

  function newKey() {
    if (window.crypto && typeof crypto.randomUUID === 'function') {
      return crypto.randomUUID();
    }
    // crypto.randomUUID needs a secure context; getRandomValues does not.
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  function normalizePhone(raw) {
    let p = raw.replace(/[\s\-()]/g, '');
    if (p.startsWith('+86')) p = p.slice(3);
    else if (p.startsWith('0086')) p = p.slice(4);
    else if (p.length === 13 && p.startsWith('86')) p = p.slice(2);
    return p;
  }

  function chars(s) {
    return Array.from(s).length;
  }

  function mb(bytes) {
    return Math.round(bytes / (1024 * 1024));
  }

  // ---------------------------------------------------------------------------------------
  // Tabs: /report and /report/lookup are the same page.
  // ---------------------------------------------------------------------------------------

  function show(view, push) {
    const lookup = view === 'lookup';
    $('report-view').hidden = lookup;
    $('lookup-view').hidden = !lookup;
    for (const [id, on] of [['tab-report', !lookup], ['tab-lookup', lookup]]) {
      if (on) $(id).setAttribute('aria-current', 'page');
      else $(id).removeAttribute('aria-current');
    }
    const path = lookup ? '/report/lookup' : '/report';
    if (push && location.pathname !== path) history.pushState({ view: view }, '', path);
    document.title = (lookup ? '查询办理进度' : '网上反映问题') + ' · ' + (info.hotline_name || '城市服务热线');
  }

  function viewOfPath() {
    return /\/lookup\/?$/.test(location.pathname) ? 'lookup' : 'report';
  }

  // ---------------------------------------------------------------------------------------
  // Errors
  // ---------------------------------------------------------------------------------------

  function fieldError(id, message) {
    const el = $(id + '-error');
    el.textContent = message;
    el.hidden = false;
    const field = $('field-' + id);
    if (field) field.classList.add('invalid');
  }

  function clearErrors() {
    for (const id of ['content', 'photos', 'phone']) {
      $(id + '-error').hidden = true;
      const field = $('field-' + id);
      if (field) field.classList.remove('invalid');
    }
    $('form-error').hidden = true;
  }

  function formError(message) {
    const el = $('form-error');
    el.textContent = message;
    el.hidden = false;
    el.scrollIntoView({ block: 'center' });
  }

  // What to tell the citizen about a refused request: the server's Chinese detail, or a
  // sentence by status when there is no problem document (a proxy's error page).
  function problemText(status, body) {
    if (body && typeof body.detail === 'string' && body.detail) return body.detail;
    if (status === 413) return '提交的内容过大，请减少照片数量或压缩照片后重试。';
    if (status === 429) return '提交过于频繁，请稍后再试。';
    if (status >= 500) return '服务暂时不可用，请稍后再试；情况紧急请直接拨打服务热线。';
    return '提交未成功（错误 ' + status + '），请稍后再试。';
  }

  async function readJson(res) {
    try {
      return await res.json();
    } catch (e) {
      return null;
    }
  }

  // ---------------------------------------------------------------------------------------
  // The report form
  // ---------------------------------------------------------------------------------------

  function updateCount() {
    $('content-count').textContent = String(chars($('content').value));
  }

  function renderPhotos() {
    const box = $('previews');
    box.replaceChildren();
    photos.forEach((p, i) => {
      const item = document.createElement('div');
      item.className = 'preview';
      const img = document.createElement('img');
      img.alt = '照片 ' + (i + 1);
      img.src = p.url;
      img.addEventListener('error', () => {
        const broken = document.createElement('div');
        broken.className = 'broken';
        broken.textContent = '无法预览，可能不是照片';
        img.replaceWith(broken);
      });
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = '×';
      remove.setAttribute('aria-label', '删除照片 ' + (i + 1));
      remove.addEventListener('click', () => {
        URL.revokeObjectURL(p.url);
        photos.splice(i, 1);
        renderPhotos();
      });
      item.append(img, remove);
      box.append(item);
    });
    $('photo-add').hidden = photos.length >= info.max_photos;
  }

  function addPhotos(files) {
    $('photos-error').hidden = true;
    const refused = [];
    for (const file of files) {
      if (photos.length >= info.max_photos) {
        refused.push('最多可上传 ' + info.max_photos + ' 张照片，多出的照片未添加。');
        break;
      }
      if (file.type && !ACCEPTED.includes(file.type)) {
        refused.push('“' + file.name + '”不是 JPEG、PNG 或 WebP 格式的照片。');
        continue;
      }
      if (file.size > info.max_photo_bytes) {
        refused.push('“' + file.name + '”超过 ' + mb(info.max_photo_bytes) + ' MB，请压缩后再传。');
        continue;
      }
      if (file.size === 0) {
        refused.push('“' + file.name + '”是空文件。');
        continue;
      }
      photos.push({ file: file, url: URL.createObjectURL(file) });
    }
    renderPhotos();
    if (refused.length) fieldError('photos', refused.join(' '));
  }

  function checkReport() {
    let first = null;
    const content = $('content').value.trim();
    const n = chars(content);
    if (n === 0) {
      fieldError('content', '请填写问题描述。');
      first = first || '请填写问题描述。';
    } else if (n < info.content_min_chars) {
      const m = '问题描述太短，请至少写 ' + info.content_min_chars + ' 个字，说明什么地方出了什么问题。';
      fieldError('content', m);
      first = first || m;
    } else if (n > info.content_max_chars) {
      const m = '问题描述最多 ' + info.content_max_chars + ' 个字。';
      fieldError('content', m);
      first = first || m;
    }
    const phone = normalizePhone($('phone').value);
    if (!phone) {
      const m = '请填写手机号码，查询进度和回访都要用到。';
      fieldError('phone', m);
      first = first || m;
    } else if (!MOBILE.test(phone)) {
      const m = '手机号码格式不正确：请填写 11 位手机号码，例如 13812345678。';
      fieldError('phone', m);
      first = first || m;
    }
    if (photos.length > info.max_photos) {
      const m = '最多可上传 ' + info.max_photos + ' 张照片，请删去多余的照片。';
      fieldError('photos', m);
      first = first || m;
    }
    return first;
  }

  async function submitReport(ev) {
    ev.preventDefault();
    if (busy) return; // a double click sends once
    clearErrors();
    const problem = checkReport();
    if (problem) {
      formError(problem);
      return;
    }
    if (!reportKey) reportKey = newKey();
    const data = new FormData();
    data.append('content', $('content').value.trim());
    for (const id of ['category', 'address', 'lat', 'lon', 'name']) {
      const v = $(id).value.trim();
      if (v) data.append(id, v);
    }
    data.append('phone', normalizePhone($('phone').value));
    for (const p of photos) data.append('photo', p.file, p.file.name);
    busy = true;
    const button = $('submit');
    button.disabled = true;
    button.textContent = photos.length ? '正在上传照片并提交…' : '正在提交…';
    try {
      const res = await fetch('/api/v1/web/reports', {
        method: 'POST',
        headers: { 'Idempotency-Key': reportKey, Accept: 'application/json' },
        body: data,
      });
      const body = await readJson(res);
      if (res.ok && body && body.number) {
        showDone(body);
      } else {
        formError(problemText(res.status, body));
      }
    } catch (e) {
      // The report may or may not have arrived: the same key makes a retry safe.
      formError('网络连接失败，暂时无法确认是否提交成功。请检查网络后再次点击“提交”，不会重复生成工单。');
    } finally {
      busy = false;
      button.disabled = false;
      button.textContent = '提交';
    }
  }

  function showDone(body) {
    $('ticket-number').textContent = body.number;
    $('done-replayed').hidden = !body.replayed;
    const merged = $('done-merged');
    merged.hidden = !body.merged_into;
    if (body.merged_into) {
      merged.textContent = '已有市民反映过同一问题，您的反映已并入工单 ' + body.merged_into + ' 一并办理。';
    }
    $('report-form').hidden = true;
    $('done').hidden = false;
    $('done').scrollIntoView({ block: 'start' });
  }

  function startAgain() {
    for (const p of photos) URL.revokeObjectURL(p.url);
    photos = [];
    reportKey = null;
    const phone = $('phone').value;
    const name = $('name').value;
    $('report-form').reset();
    // The citizen is the same: keep who they are, forget what they reported.
    $('phone').value = phone;
    $('name').value = name;
    clearLocation();
    renderPhotos();
    updateCount();
    clearErrors();
    $('done').hidden = true;
    $('report-form').hidden = false;
    $('content').focus();
  }

  // ---------------------------------------------------------------------------------------
  // Location
  // ---------------------------------------------------------------------------------------

  function clearLocation() {
    $('lat').value = '';
    $('lon').value = '';
    $('location-status').textContent = '';
    $('locate-clear').hidden = true;
  }

  function locate() {
    const status = $('location-status');
    if (!navigator.geolocation) {
      status.textContent = '此浏览器不支持定位，请在上面填写地址。';
      return;
    }
    if (!window.isSecureContext) {
      status.textContent = '通过加密连接（https）访问本页才能定位，请在上面填写地址。';
      return;
    }
    status.textContent = '正在获取位置…';
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        const lat = pos.coords.latitude;
        const lon = pos.coords.longitude;
        $('lat').value = lat.toFixed(6);
        $('lon').value = lon.toFixed(6);
        const ns = lat >= 0 ? '北纬 ' : '南纬 ';
        const ew = lon >= 0 ? '东经 ' : '西经 ';
        let text = '已获取位置：' + ns + Math.abs(lat).toFixed(5) + '°，' + ew + Math.abs(lon).toFixed(5) + '°';
        if (pos.coords.accuracy) text += '（误差约 ' + Math.round(pos.coords.accuracy) + ' 米）';
        status.textContent = text;
        $('locate-clear').hidden = false;
      },
      (err) => {
        const messages = {
          1: '未获得定位权限。请在浏览器设置中允许本页使用位置，或在上面填写地址。',
          2: '暂时无法获取位置，请在上面填写地址。',
          3: '定位超时，请再试一次或在上面填写地址。',
        };
        status.textContent = messages[err.code] || messages[2];
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
    );
  }

  // ---------------------------------------------------------------------------------------
  // Look-up
  // ---------------------------------------------------------------------------------------

  function lookupError(message) {
    const el = $('lookup-error');
    el.textContent = message;
    el.hidden = false;
    $('lookup-result').hidden = true;
  }

  function setFact(id, value) {
    $(id).textContent = value || '';
    $(id).hidden = !value;
    const label = $(id + '-label');
    if (label) label.hidden = !value;
  }

  async function submitLookup(ev) {
    ev.preventDefault();
    if (looking) return;
    $('lookup-error').hidden = true;
    const number = $('lookup-number').value.trim();
    const phone = normalizePhone($('lookup-phone').value);
    if (!number || !phone) {
      lookupError('请填写工单编号和手机号码。');
      return;
    }
    if (!MOBILE.test(phone)) {
      lookupError('手机号码格式不正确：请填写反映问题时留下的 11 位手机号码。');
      return;
    }
    looking = true;
    const button = $('lookup-submit');
    button.disabled = true;
    button.textContent = '正在查询…';
    try {
      const res = await fetch('/api/v1/web/lookup', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ number: number, phone: phone }),
      });
      const body = await readJson(res);
      if (res.ok && body && body.number) showProgress(body);
      else lookupError(problemText(res.status, body));
    } catch (e) {
      lookupError('网络连接失败，请检查网络后重试。');
    } finally {
      looking = false;
      button.disabled = false;
      button.textContent = '查询';
    }
  }

  function showProgress(p) {
    $('result-number').textContent = p.number;
    $('result-status').textContent = p.status_text;
    $('result-summary').textContent = p.summary;
    $('result-received').textContent = p.received_at;
    $('result-updated').textContent = p.updated_at;
    setFact('result-category', p.category);
    setFact('result-department', p.department);
    const merged = $('result-merged');
    merged.hidden = !p.merged_into;
    if (p.merged_into) {
      merged.textContent = '其他市民也反映了同一问题，已与工单 ' + p.merged_into + ' 合并办理，以下为合并后的办理情况。';
    }
    const list = $('result-timeline');
    list.replaceChildren();
    for (const step of p.timeline) {
      const li = document.createElement('li');
      const time = document.createElement('time');
      time.textContent = step.at;
      const text = document.createElement('span');
      text.textContent = step.text;
      li.append(time, text);
      list.append(li);
    }
    $('lookup-result').hidden = false;
  }

  // ---------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------

  async function loadInfo() {
    try {
      const res = await fetch('/api/v1/web/form', { headers: { Accept: 'application/json' } });
      if (!res.ok) return;
      const body = await res.json();
      info = Object.assign(info, body);
    } catch (e) {
      return; // the defaults work; the server checks anyway
    }
    if (info.hotline_name) $('hotline-name').textContent = info.hotline_name;
    if (info.hotline) {
      $('done-hotline').textContent = info.hotline;
      $('foot-hotline').textContent = ' ' + info.hotline + ' ';
    }
    $('content').maxLength = info.content_max_chars;
    $('content-max').textContent = String(info.content_max_chars);
    $('photo-max').textContent = String(info.max_photos);
    $('photo-mb').textContent = String(mb(info.max_photo_bytes));
    const select = $('category');
    const groups = new Map();
    for (const c of info.categories) {
      let g = groups.get(c.group);
      if (!g) {
        g = document.createElement('optgroup');
        g.label = c.group;
        groups.set(c.group, g);
        select.append(g);
      }
      const o = document.createElement('option');
      o.value = c.id;
      o.textContent = c.name;
      g.append(o);
    }
    renderPhotos();
    show(viewOfPath(), false);
    document.body.dataset.ready = 'true';
  }

  document.addEventListener('DOMContentLoaded', () => {
    show(viewOfPath(), false);
    for (const [tab, view] of [['tab-report', 'report'], ['tab-lookup', 'lookup']]) {
      $(tab).addEventListener('click', (ev) => {
        ev.preventDefault();
        show(view, true);
      });
    }
    window.addEventListener('popstate', () => show(viewOfPath(), false));
    $('content').addEventListener('input', updateCount);
    // An error is about what was sent: once the citizen changes the field, it goes.
    for (const id of ['content', 'phone']) {
      $(id).addEventListener('input', () => {
        $(id + '-error').hidden = true;
        $('field-' + id).classList.remove('invalid');
        $('form-error').hidden = true;
      });
    }
    $('photos').addEventListener('change', (ev) => {
      addPhotos(Array.from(ev.target.files || []));
      ev.target.value = ''; // the same file can be chosen again after removing it
    });
    $('locate').addEventListener('click', locate);
    $('locate-clear').addEventListener('click', clearLocation);
    $('report-form').addEventListener('submit', submitReport);
    $('done-again').addEventListener('click', startAgain);
    $('done-lookup').addEventListener('click', () => {
      $('lookup-number').value = $('ticket-number').textContent;
      $('lookup-phone').value = normalizePhone($('phone').value);
      show('lookup', true);
      $('lookup-form').requestSubmit();
    });
    $('lookup-form').addEventListener('submit', submitLookup);
    loadInfo();
  });
})();
