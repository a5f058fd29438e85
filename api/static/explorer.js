// The explorer at `/` (docs/explorer.md): filters, a map, a chart and a table, each
// drawn from one call to the public API, and the calls themselves shown as snippets.
// Plain browser JavaScript with no build step; Leaflet (L), uPlot and topojson are
// the vendored globals loaded before this module.

const API = '/api/v1';
const FILTERS = ['event_type', 'date_from', 'date_to', 'admin1', 'weapon', 'actor', 'q'];
// Small pages keep each view to a few kilobytes and paging visible on small datasets.
const TABLE_PAGE = 10;
// The map draws every place of the filtered view from /locations, which counts each
// place's matching events, in pages of the API's largest size; past MAP_PAGES pages
// (a map of that many places is past reading) it says what it left out.
const MAP_PAGE = 1000;
const MAP_PAGES = 5;
// A day series over the whole seed fits one page; /stats allows up to 5000 rows.
const CHART_PAGE = 5000;
const PLACES = new Set(['exact', 'near', 'city']);
// Half a period, in seconds: the chart's x axis reaches that far past the first and
// last bars, so that neither is cut in half.
const HALF_PERIOD = { day: 43200, week: 302400, month: 1339200 };
const LAUNCHED = '#c0392b';
const INTERCEPTED = '#1f6fb2';
// Bars need no dots on top (uPlot draws them where a series has few values).
const NONE = { show: false };

const form = document.getElementById('filters');
const statusLine = document.getElementById('status');
let generation = 0;
let calls = {};

function filterParams() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function apiUrl(path, params) {
  const query = params.toString();
  return `${API}${path}${query ? `?${query}` : ''}`;
}

function withParams(params, extra) {
  const merged = new URLSearchParams(params);
  for (const [name, value] of Object.entries(extra)) merged.set(name, value);
  return merged;
}

// A problem+json answer names the parameter at fault: show its detail, not a stack.
class ApiError extends Error {}

// The call exactly as the snippets make it: no header of its own.
async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new ApiError(body.detail || body.title || `${response.status}`);
  return body;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function words(name) {
  return name.replaceAll('_', ' ');
}

// ---- Map -------------------------------------------------------------------------

const map = L.map('map', { zoomSnap: 0.5 }).setView([48.6, 31.5], 5);
map.attributionControl.addAttribution('Borders: Natural Earth');
const markers = L.featureGroup().addTo(map);

async function drawCountries() {
  const response = await fetch('/static/vendor/world-atlas-2.0.2/countries-50m.json');
  const topology = await response.json();
  L.geoJSON(topojson.feature(topology, topology.objects.countries), {
    interactive: false,
    style: { color: '#8a939c', weight: 1, fillColor: '#f6f4ef', fillOpacity: 1 },
  }).addTo(map);
  markers.bringToFront();
}

// A place's popup says how many events match there and, once opened, lists the latest
// of them: one call, made only for the places a person opens.
const POPUP_EVENTS = 12;

function plural(count) {
  return count === 1 ? '1 event' : `${count} events`;
}

// The events of one place within the filters: a place is named by its name, its
// region and its precision, since the API has no filter by place id (a town and its
// vicinity share a name and a point).
function placeEvents(place, filters) {
  const only = { location: place.name, precision: place.precision };
  if (place.admin1) only.admin1 = place.admin1;
  return withParams(filters, only);
}

// What a marker says on hover (its SVG title) and atop its popup.
function label(place) {
  return `${place.name} (${place.precision}): ${plural(place.event_count)}`;
}

// `resized` lets Leaflet place the popup again once the list has come.
function popup(place, filters, resized) {
  const list = element('ul', { class: 'popup-events' }, element('li', {}, 'Loading…'));
  const params = placeEvents(place, filters);
  getJSON(apiUrl('/events', withParams(params, { limit: POPUP_EVENTS })))
    .then((page) => {
      const items = page.data.map((event) =>
        element(
          'li',
          {},
          `${event.date} · ${words(event.event_type)} · `,
          element('a', { href: `${API}/events/${encodeURIComponent(event.id)}` }, 'JSON'),
        ),
      );
      const more = place.event_count - page.data.length;
      if (more > 0) {
        items.push(element('li', {}, element('a', { href: apiUrl('/events', params) }, `and ${more} more`)));
      }
      list.replaceChildren(...items);
    })
    .catch((error) => list.replaceChildren(element('li', {}, error.message)))
    .finally(resized);
  return element(
    'div',
    {},
    element('strong', {}, place.name),
    ` (${place.precision}): ${plural(place.event_count)}`,
    list,
  );
}

// One marker per place, its area in proportion to its events (the view's busiest
// place the largest).
function marker(place, busiest, filters) {
  const grow = Math.sqrt(place.event_count / busiest);
  // A region's or a country's point is its centroid, not where anything happened:
  // drawn as a wide dashed ring rather than a dot.
  const style = PLACES.has(place.precision)
    ? { radius: 5 + 15 * grow, color: '#7b241c', weight: 1, fillColor: LAUNCHED, fillOpacity: 0.85 }
    : { radius: 14 + 16 * grow, color: '#1f4e79', weight: 2, dashArray: '4 4', fillOpacity: 0.05 };
  const drawn = L.circleMarker([place.latitude, place.longitude], {
    ...style,
    className: `marker precision-${place.precision}`,
  });
  // Built once, when first opened.
  let content = null;
  return drawn.bindPopup(() => (content ??= popup(place, filters, () => drawn.getPopup().update())));
}

async function drawMap(url, filters, run) {
  const places = [];
  let next = url;
  let pages = 0;
  while (next && pages < MAP_PAGES) {
    const collection = await getJSON(next);
    if (run !== generation) return;
    for (const feature of collection.features) {
      // A place without a point cannot be drawn; one without a matching event (with
      // no filter of events, /locations lists every place) has nothing to show.
      if (feature.geometry && feature.properties.event_count > 0) places.push(feature.properties);
    }
    next = collection.links.next;
    pages += 1;
  }
  markers.clearLayers();
  const busiest = Math.max(1, ...places.map((place) => place.event_count));
  for (const place of places) {
    const drawn = marker(place, busiest, filters);
    markers.addLayer(drawn);
    const title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
    title.textContent = label(place);
    drawn.getElement().append(title);
  }
  const count = places.reduce((sum, place) => sum + place.event_count, 0);
  const note = document.getElementById('map-note');
  note.textContent =
    places.length === 0 ? 'No event matches these filters.' : `${count} events at ${places.length} places.`;
  if (next) {
    note.textContent += ` These are the first ${MAP_PAGE * MAP_PAGES} places (by id); narrow the filters to see the rest.`;
  }
  if (places.length) map.fitBounds(markers.getBounds(), { padding: [30, 30], maxZoom: 8 });
}

// ---- Chart -----------------------------------------------------------------------

// Launched and intercepted over every munition category of a row (categories are
// disjoint within an event); null when no entry gives the count, since unknown is
// not zero.
function total(row, count) {
  let sum = null;
  for (const category of Object.values(row.munitions)) {
    if (category[count] !== null) sum = (sum ?? 0) + category[count];
  }
  return sum;
}

let chart = null;

function chartWidth() {
  return document.getElementById('chart').clientWidth;
}

async function drawChart(url, interval, run) {
  const body = await getJSON(url);
  if (run !== generation) return;
  const seconds = body.data.map((row) => Date.parse(`${row.start}T00:00:00Z`) / 1000);
  const launched = body.data.map((row) => total(row, 'launched'));
  const intercepted = body.data.map((row) => total(row, 'intercepted'));
  // Side by side: launched left of each period's start, intercepted right of it.
  const bars = (align) => uPlot.paths.bars({ size: [0.35, 24], align });
  const pad = HALF_PERIOD[interval];
  const options = {
    width: chartWidth(),
    height: 260,
    scales: {
      x: { time: true, range: (u, min, max) => [min - pad, max + pad] },
      y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] },
    },
    series: [
      {},
      { label: 'Launched', stroke: LAUNCHED, fill: LAUNCHED, paths: bars(-1), points: NONE },
      { label: 'Intercepted', stroke: INTERCEPTED, fill: INTERCEPTED, paths: bars(1), points: NONE },
    ],
    axes: [{}, { label: 'Munitions' }],
  };
  if (chart) chart.destroy();
  chart = new uPlot(options, [seconds, launched, intercepted], document.getElementById('chart'));
  const sum = (values) => values.reduce((a, b) => a + (b ?? 0), 0);
  const notes = [
    `${body.data.length} ${interval}s: ${sum(launched)} launched, ${sum(intercepted)} intercepted.`,
  ];
  if (body.coarser.length) {
    const coarser = body.coarser.map((row) => `${row.key} (${row.events})`).join(', ');
    notes.push(`Events coded by a period longer than a ${interval}, not drawn: ${coarser}.`);
  }
  if (body.links.next) notes.push(`Only the first ${body.data.length} ${interval}s are drawn.`);
  document.getElementById('chart-note').textContent = notes.join(' ');
}

window.addEventListener('resize', () => chart?.setSize({ width: chartWidth(), height: 260 }));

// ---- Table -----------------------------------------------------------------------

// Pages seen, so that going back costs no request; links.next leads forward.
let pages = [];
let shown = 0;

function weapons(event) {
  return event.munitions
    .map((entry) => {
      const counts = [entry.launched, entry.intercepted].map((n) => n ?? '?').join('/');
      return `${words(entry.category)} ${counts}`;
    })
    .join(', ');
}

function killed(event) {
  const estimate = event.casualties.killed;
  if (!estimate) return '';
  return estimate.qualifier === 'at_least' ? `≥ ${estimate.best}` : `${estimate.best}`;
}

function place(location) {
  const within = location.admin1 || location.country;
  return within === location.name ? location.name : `${location.name}, ${within}`;
}

function row(event) {
  const location = event.location;
  const date = event.date_precision === 'day' ? event.date : `${event.date} (${event.date_precision})`;
  const json = element('a', { href: `${API}/events/${encodeURIComponent(event.id)}` }, 'JSON');
  return element(
    'tr',
    {},
    element('td', {}, date),
    element('td', {}, words(event.event_type)),
    element('td', {}, `${place(location)} (${location.precision})`),
    element('td', {}, weapons(event)),
    element('td', {}, killed(event)),
    element('td', {}, json),
  );
}

function showPage(index) {
  shown = index;
  const body = pages[index];
  document.querySelector('#events tbody').replaceChildren(...body.data.map(row));
  document.getElementById('page').textContent = body.data.length
    ? `Page ${index + 1}`
    : 'No event matches these filters.';
  document.getElementById('previous').disabled = index === 0;
  document.getElementById('next').disabled = !body.links.next;
  // The builder shows the page on screen: the first, or the links.next that led here.
  calls.table = body.links.self;
  showCall();
}

async function loadTable(url, run) {
  const body = await getJSON(url);
  if (run !== generation) return;
  pages = [body];
  showPage(0);
}

async function turnPage(step) {
  const target = shown + step;
  if (target === pages.length) {
    const run = generation;
    const body = await settle(getJSON(pages[shown].links.next));
    if (!body || run !== generation) return;
    pages.push(body);
  }
  showPage(target);
  document.getElementById(step > 0 ? 'next' : 'previous').focus();
}

document.getElementById('previous').addEventListener('click', () => turnPage(-1));
document.getElementById('next').addEventListener('click', () => turnPage(1));

// ---- URL builder -----------------------------------------------------------------

const USES = {
  table: 'page.data', // an array of events; page.links.next is the next page
  map: 'page.features', // GeoJSON: a FeatureCollection of places, each with its event_count
  chart: 'page.data', // one row per period; page.coarser: events of longer periods
};

function quoted(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

function snippets(url, use) {
  return {
    curl: `curl -s --compressed ${quoted(url)}`,
    fetch: [
      `const response = await fetch(${JSON.stringify(url)});`,
      'if (!response.ok) throw new Error((await response.json()).detail);',
      'const page = await response.json();',
      `console.log(${use});`,
    ].join('\n'),
    python: [
      'import json',
      'import urllib.request',
      '',
      `with urllib.request.urlopen(${JSON.stringify(url)}) as response:`,
      '    page = json.load(response)',
      `print(${use.replace(/\.(\w+)/g, '["$1"]')})`,
    ].join('\n'),
  };
}

function showCall() {
  const which = document.getElementById('call').value;
  const url = new URL(calls[which], location.origin).href;
  const link = document.getElementById('call-url');
  link.href = url;
  link.querySelector('code').textContent = url;
  for (const [language, text] of Object.entries(snippets(url, USES[which]))) {
    document.getElementById(`snippet-${language}`).textContent = text;
  }
}

document.getElementById('call').addEventListener('change', () => {
  showCall();
  writeHash();
});

for (const button of document.querySelectorAll('button.copy')) {
  button.addEventListener('click', async () => {
    const text = document.getElementById(button.dataset.copy).textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
    } catch {
      // No clipboard (a plain-http origin other than localhost): select the text
      // so that the next Ctrl+C copies it.
      const range = document.createRange();
      range.selectNodeContents(document.getElementById(button.dataset.copy));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      button.textContent = 'Selected: press Ctrl+C';
    }
    setTimeout(() => (button.textContent = 'Copy'), 2000);
  });
}

// ---- The view ----------------------------------------------------------------------

// The view lives in the page's fragment, so that it can be shared and reloaded: `/`
// itself takes no query parameters.
function writeHash() {
  const state = withParams(filterParams(), {
    interval: form.elements.interval.value,
    call: document.getElementById('call').value,
  });
  history.replaceState(null, '', `#${state}`);
}

function readHash() {
  const state = new URLSearchParams(location.hash.slice(1));
  for (const name of [...FILTERS, 'interval']) {
    if (state.has(name)) form.elements[name].value = state.get(name);
  }
  if (state.has('call')) document.getElementById('call').value = state.get('call');
}

async function settle(promise) {
  try {
    return await promise;
  } catch (error) {
    statusLine.textContent = error instanceof ApiError ? error.message : `The API did not answer: ${error}`;
    return null;
  }
}

async function apply() {
  const run = ++generation;
  document.body.dataset.state = 'loading';
  statusLine.textContent = 'Loading…';
  const filters = filterParams();
  const interval = form.elements.interval.value;
  calls = {
    table: apiUrl('/events', withParams(filters, { limit: TABLE_PAGE })),
    map: apiUrl('/locations', withParams(filters, { format: 'geojson', limit: MAP_PAGE })),
    chart: apiUrl('/stats', withParams(filters, { interval, limit: CHART_PAGE })),
  };
  showCall();
  writeHash();
  statusLine.textContent = '';
  await Promise.all([
    settle(drawMap(calls.map, filters, run)),
    settle(drawChart(calls.chart, interval, run)),
    settle(loadTable(calls.table, run)),
  ]);
  if (run === generation) document.body.dataset.state = 'ready';
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  apply();
});
form.addEventListener('reset', () => setTimeout(apply));
// Enter applies the filters from every field; a select does not submit on its own.
form.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && event.target.tagName === 'SELECT') {
    event.preventDefault();
    form.requestSubmit();
  }
});

readHash();
settle(drawCountries());
apply();
