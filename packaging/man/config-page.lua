-- pandoc Lua filter: builds a section-5 man page from the Markdown that docs/ already holds,
-- so the page and the docs cannot drift (packaging/man/CMakeLists.txt).
--
-- The input is a short front page (NAME, SYNOPSIS, SEE ALSO) holding a paragraph "@DOC@".
-- Metadata:
--   og_doc      Markdown file whose content replaces "@DOC@"
--   og_section  optional: only the level-2 section with this title is taken
-- What the doc gets on the way in:
--   - its title (level 1) or the taken section's heading becomes DESCRIPTION; other headings
--     move up one level (## -> .SH, ### -> .SS);
--   - a paragraph that is only inline code, such as `[[host]]`, becomes a .SH heading;
--   - each "key | default | meaning" table becomes a definition list (.TP), which reads well
--     in a terminal of any width where a three-column tbl table does not.

local stringify = pandoc.utils.stringify

local function cell_blocks(cell)
  -- pandoc 2.17: a cell is a table whose contents field holds the blocks
  return cell.contents or cell
end

local function rows_of(body)
  return body.body or body[4] or {}
end

local function table_to_deflist(tbl)
  local head = tbl.head.rows[1]
  if not head or #head.cells < 3 then return nil end
  local names = {}
  for i, c in ipairs(head.cells) do names[i] = stringify(cell_blocks(c)):lower() end
  if names[1] ~= "key" or names[2] ~= "default" then return nil end
  local items = {}
  for _, body in ipairs(tbl.bodies) do
    for _, row in ipairs(rows_of(body)) do
      local term = {}
      for _, b in ipairs(cell_blocks(row.cells[1])) do
        for _, il in ipairs(b.content or {}) do
          if il.t == "Code" then table.insert(term, pandoc.Strong({pandoc.Str(il.text)}))
          else table.insert(term, il) end
        end
      end
      local default = stringify(cell_blocks(row.cells[2]))
      local desc = {}
      if default ~= "" then
        local d = {pandoc.Emph({pandoc.Str("Default:")}), pandoc.Space()}
        for _, b in ipairs(cell_blocks(row.cells[2])) do
          for _, il in ipairs(b.content or {}) do table.insert(d, il) end
        end
        table.insert(d, pandoc.Str("."))
        table.insert(desc, pandoc.Para(d))
      end
      for i = 3, #row.cells do
        for _, b in ipairs(cell_blocks(row.cells[i])) do table.insert(desc, b) end
      end
      table.insert(items, {term, {desc}})
    end
  end
  return pandoc.DefinitionList(items)
end

local function only_code(para)
  return #para.content == 1 and para.content[1].t == "Code"
end

local function load_doc(path, section)
  local f = assert(io.open(path, "r"), "og_doc: cannot open " .. path)
  local text = f:read("a")
  f:close()
  local doc = pandoc.read(text, "markdown")
  local out, taking = {}, section == nil
  for _, b in ipairs(doc.blocks) do
    if b.t == "Header" and section and b.level == 2 then
      if taking then break end
      if stringify(b.content) == section then
        taking = true
        table.insert(out, pandoc.Header(1, {pandoc.Str("DESCRIPTION")}))
        goto continue
      end
    end
    if not taking then goto continue end
    if b.t == "Header" then
      if b.level == 1 then
        table.insert(out, pandoc.Header(1, {pandoc.Str("DESCRIPTION")}))
      else
        table.insert(out, pandoc.Header(math.max(1, b.level - 1), b.content))
      end
    elseif b.t == "Para" and only_code(b) then
      table.insert(out, pandoc.Header(1, {pandoc.Str(b.content[1].text)}))
    elseif b.t == "Table" then
      table.insert(out, table_to_deflist(b) or b)
    else
      table.insert(out, b)
    end
    ::continue::
  end
  assert(#out > 0, "og_doc: nothing taken from " .. path .. (section and (" section " .. section) or ""))
  return out
end

function Pandoc(doc)
  local path = stringify(doc.meta.og_doc or "")
  assert(path ~= "", "og_doc metadata is required")
  local section = doc.meta.og_section and stringify(doc.meta.og_section) or nil
  local blocks = {}
  for _, b in ipairs(doc.blocks) do
    if b.t == "Para" and stringify(b) == "@DOC@" then
      for _, x in ipairs(load_doc(path, section)) do table.insert(blocks, x) end
    else
      table.insert(blocks, b)
    end
  end
  doc.blocks = blocks
  return doc
end
