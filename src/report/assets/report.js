// The report page's script: plain browser JS, inlined into report.html by render.ts.
// Data reaches the page only through textContent, never as markup.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var body = document.getElementById('details-body');
  var details = document.getElementById('details');
  var timeline = document.getElementById('timeline');
  var pinned = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function duration(ns) {
    var abs = Math.abs(ns);
    function p(v) { return String(Number(v.toPrecision(6))); }
    if (abs < 1e3) return p(ns) + ' ns';
    if (abs < 1e6) return p(ns / 1e3) + ' µs';
    if (abs < 1e9) return p(ns / 1e6) + ' ms';
    return p(ns / 1e9) + ' s';
  }
  function json(title, value) {
    body.appendChild(el('h3', '', title));
    body.appendChild(el('pre', '', JSON.stringify(value, null, 2)));
  }
  function show(index) {
    var op = data.ops[index];
    if (!op) return;
    body.replaceChildren();
    details.setAttribute('data-showing', String(index));
    var head = el('p');
    head.appendChild(el('b', '', 'Operation #' + index + ' '));
    head.appendChild(el('span', 'mono', op.label));
    body.appendChild(head);
    var tags = el('p');
    op.status.forEach(function (s) {
      tags.appendChild(el('span', 'tag' + (/cannot|matches no/.test(s) ? ' bad' : ''), s));
      tags.appendChild(document.createTextNode(' '));
    });
    if (op.status.length) body.appendChild(tags);
    var dl = el('dl');
    function row(k, v) { dl.appendChild(el('dt', '', k)); dl.appendChild(el('dd', '', v)); }
    row('client', String(op.client));
    if (op.member !== undefined) row('member', op.member);
    if (op.step !== undefined) row('step', String(op.step));
    row('call', '+' + duration(op.call));
    row('return', op.return === null ? 'never (unknown outcome)' : '+' + duration(op.return) + '  (took ' + duration(op.return - op.call) + ')');
    if (op.error !== undefined) row('error', op.error);
    body.appendChild(dl);
    json('Request', op.request);
    if (op.response !== undefined) json('Response', op.response);
    else body.appendChild(el('p', 'muted', 'No response recorded.'));
    if (op.statesAfter) json('Candidate states after this step', op.statesAfter);
    else if (op.stateNote) body.appendChild(el('p', 'muted', op.stateNote));
  }
  function select(index, scroll) {
    var previous = document.querySelector('.op.selected');
    if (previous) previous.classList.remove('selected');
    var bar = document.querySelector('.op[data-op="' + index + '"]');
    pinned = data.ops[index] ? String(index) : null;
    if (bar) {
      bar.classList.add('selected');
      if (scroll) bar.scrollIntoView({ block: 'nearest', inline: 'center', behavior: 'smooth' });
    }
    show(index);
  }
  timeline.addEventListener('mouseover', function (e) {
    var bar = e.target.closest('[data-op]');
    if (bar) show(bar.getAttribute('data-op'));
  });
  timeline.addEventListener('mouseleave', function () { if (pinned !== null) show(pinned); });
  document.addEventListener('click', function (e) {
    var target = e.target.closest('[data-op], [data-ref]');
    if (!target) return;
    var ref = target.getAttribute('data-ref');
    select(ref !== null ? ref : target.getAttribute('data-op'), ref !== null);
  });
  timeline.addEventListener('keydown', function (e) {
    var bar = e.target.closest('[data-op]');
    if (bar && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); select(bar.getAttribute('data-op'), false); }
  });
  timeline.addEventListener('focusin', function (e) {
    var bar = e.target.closest('[data-op]');
    if (bar) show(bar.getAttribute('data-op'));
  });
  var zoom = document.getElementById('zoom');
  var zoomValue = document.getElementById('zoom-value');
  var canvas = document.getElementById('canvas');
  var axis = document.getElementById('axis');
  function drawAxis(factor) {
    var raw = data.span / (data.ticksPerScreen * factor);
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * power; }).find(function (v) { return v >= raw; });
    axis.replaceChildren();
    for (var k = Math.ceil(data.offset / step); k * step <= data.offset + data.span; k++) {
      var tick = el('span', 'tick', duration(k * step));
      tick.style.left = ((k * step - data.offset) / data.span * 100) + '%';
      axis.appendChild(tick);
    }
  }
  zoom.addEventListener('input', function () {
    var factor = Number(zoom.value);
    // Keep the time at the middle of the view in place while zooming.
    var middle = (timeline.scrollLeft + timeline.clientWidth / 2) / canvas.scrollWidth;
    canvas.style.width = (factor * 100) + '%';
    zoomValue.textContent = factor + '×';
    drawAxis(factor);
    timeline.scrollLeft = middle * canvas.scrollWidth - timeline.clientWidth / 2;
    fitLanes();
  });

  // Only the clients with an operation in view get a lane: a long history retires a client id at every
  // unknown outcome, so most ids are idle at any moment and their lanes would read as empty. The
  // "all clients" box shows every lane. Each lane's bars as fractions of the timeline's width.
  var allLanes = document.getElementById('all-lanes');
  var lanes = Array.prototype.map.call(document.querySelectorAll('.lane[data-client]'), function (lane) {
    var spans = Array.prototype.map.call(lane.querySelectorAll('[data-op]'), function (bar) {
      var op = data.ops[bar.getAttribute('data-op')];
      var to = op.return === null ? data.offset + data.span : op.return;
      return [(op.call - data.offset) / data.span, (to - data.offset) / data.span];
    });
    return { node: lane, spans: spans };
  });
  function fitLanes() {
    // The tracks start after the sticky client-name column, which covers their first pixels in view.
    var track = axis.clientWidth;
    var from = timeline.scrollLeft / track;
    var to = (timeline.scrollLeft + timeline.clientWidth - (canvas.scrollWidth - track)) / track;
    var active = lanes.map(function (lane) {
      return lane.spans.some(function (span) { return span[1] >= from && span[0] <= to; });
    });
    // Nothing in view (a gap in the history): keep every lane rather than none.
    var any = active.indexOf(true) >= 0;
    lanes.forEach(function (lane, i) { lane.node.hidden = any && !allLanes.checked && !active[i]; });
  }
  var fitting = false;
  timeline.addEventListener('scroll', function () {
    if (fitting) return;
    fitting = true;
    window.requestAnimationFrame(function () { fitting = false; fitLanes(); });
  });
  allLanes.addEventListener('change', fitLanes);
  window.addEventListener('resize', fitLanes);
  if (data.focus !== null) {
    select(String(data.focus), false);
    // Bring the evidence into the timeline's view without scrolling the page.
    var focused = document.querySelector('.op.selected');
    if (focused) {
      var box = timeline.getBoundingClientRect();
      var bar = focused.getBoundingClientRect();
      timeline.scrollLeft += bar.left + bar.width / 2 - box.left - box.width / 2;
    }
  }
  fitLanes();
  document.documentElement.setAttribute('data-ready', 'true');
})();
